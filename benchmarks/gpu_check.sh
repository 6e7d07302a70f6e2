#!/usr/bin/env bash
# The CUDA path, checked in one go (issue 23): run it from the repository root on a machine with a CUDA GPU.
# Under 8 minutes on a recent GPU; needs nothing the CPU tests do not (toy faces are generated here).
#
#   bash benchmarks/gpu_check.sh                  # prints every figure and a PASS/FAIL line per check
#   OUT=/tmp/gc STEPS=300 bash benchmarks/gpu_check.sh
#   DEVICE=cpu SIZE=32 STEPS=3 bash benchmarks/gpu_check.sh   # the script's own plumbing on a CPU (figures meaningless)
#
# 1. trains recipes/celeba_256_paper.yaml on 600 toy faces in CelebA's layout for STEPS steps: fp32, then bf16 +
#    channels_last, then that + torch.compile; prints the first log lines, images/s and peak GPU memory of each
# 2. times the data path alone (benchmarks/data_pipeline.py) against training on the GPU
# 3. resumes a run started on the CPU on the GPU (same precision, steps continue)
# 4. runs eval and edit on the GPU; the GPU's edit agrees with the CPU's within a few grey levels
# 5. a one-process NCCL smoke through faderkit's own DDP path (FADERKIT_DDP=1 under torchrun)
set -uo pipefail
PY=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
SIZE=${SIZE:-256}
STEPS=${STEPS:-200}
OUT=${OUT:-$(mktemp -d -t faderkit-gpu-check-XXXX)}
RECIPE=recipes/celeba_256_paper.yaml
FK=("$PY" -m faderkit.cli)
FAILED=0

say() { printf '\n== %s\n' "$*"; }
check() {  # check NAME COMMAND...: runs it, prints PASS/FAIL
    local name=$1; shift
    if "$@"; then echo "PASS $name"; else echo "FAIL $name"; FAILED=1; fi
}

if [ "$DEVICE" = cuda ]; then
    "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "Error: torch sees no CUDA GPU (torch.cuda.is_available() is False); this check needs one" >&2; exit 2; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
echo "output folder: $OUT"
mkdir -p "$OUT"

say "toy faces in CelebA's layout (600 images)"
[ -d "$OUT/faces" ] || "${FK[@]}" data toyfaces "$OUT/faces" -n 600 --layout original >/dev/null || exit 1
SMALL=(--set "data.root=$OUT/faces" --set "data.image_size=$SIZE" --set classifier.steps=50
       --set train.logging.log_every=25 --set train.logging.eval_batches=2 --set train.logging.checkpoint_every=100000
       --set train.logging.eval_every=100000 --set train.logging.sample_every=100000)
if [ "$SIZE" -lt 256 ]; then  # a smaller image, still down to the paper's 2x2 latent
    n=0; s=$SIZE; while [ "$s" -gt 2 ]; do s=$(( s / 2 )); n=$(( n + 1 )); done; SMALL+=(--set "model.n_layers=$n")
fi

figures() {  # figures RUN_DIR: median images/s after the first log record, and peak GPU memory
    "$PY" - "$1" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
ips = [r["images_per_s"] for r in recs if "images_per_s" in r][1:] or [r["images_per_s"] for r in recs if "images_per_s" in r]
mem = [r["gpu_peak_mib"] for r in recs if "gpu_peak_mib" in r]
prec = next((r["precision"] for r in recs if "precision" in r), "?")
print(f"  precision {prec}: {statistics.median(ips):,.1f} images/s (median of {len(ips)} log windows), "
      f"peak GPU memory {max(mem) if mem else 'n/a'} MiB")
EOF
}

train_row() {  # train_row NAME --set ...: one training run, its first log lines and figures
    local name=$1; shift
    say "train $SIZE px, $STEPS steps: $name"
    local t0=$SECONDS
    if "${FK[@]}" train "$RECIPE" "${SMALL[@]}" --set "train.schedule.steps=$STEPS" --device "$DEVICE" --quiet \
        --run-dir "$OUT/run_$name" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"; then
        head -n 3 "$OUT/$name.err"
        figures "$OUT/run_$name"
        echo "  wall time $(( SECONDS - t0 )) s (classifier and start-up included)"
        echo "PASS train $name"
    else
        tail -n 5 "$OUT/$name.err"; echo "FAIL train $name"; FAILED=1
    fi
}

train_row fp32 --set train.speed.amp=off
train_row bf16_cl --set train.speed.amp=bf16 --set train.speed.channels_last=true
if [ "$DEVICE" = cuda ]; then
    train_row bf16_cl_compile --set train.speed.amp=bf16 --set train.speed.channels_last=true --set train.speed.compile=true
fi

say "the data path alone, against training on $DEVICE"
DATA_SIZE=$(( SIZE < 64 ? 64 : SIZE ))
timeout 300 "$PY" benchmarks/data_pipeline.py --sizes "$DATA_SIZE" --device "$DEVICE" --count 600 --windows 3 \
    --train-windows 3 || { echo "FAIL data path"; FAILED=1; }

say "a run started on the CPU, resumed on $DEVICE"
RES=(--set "data.root=$OUT/faces" --set data.image_size=32 --set model.n_layers=4 --set classifier.steps=4
     --set train.logging.checkpoint_every=4 --set train.logging.eval_every=4 --set train.logging.sample_every=100 --quiet
     --run-dir "$OUT/run_resume")
resume_ok() {
    "${FK[@]}" train "$RECIPE" "${RES[@]}" --set train.schedule.steps=4 --device cpu 2>"$OUT/resume_cpu.err" >/dev/null || return 1
    "${FK[@]}" train "$RECIPE" "${RES[@]}" --set train.schedule.steps=8 --device "$DEVICE" --resume \
        2>"$OUT/resume_gpu.err" >/dev/null || { tail -n 3 "$OUT/resume_gpu.err"; return 1; }
    head -n 1 "$OUT/resume_cpu.err"; head -n 1 "$OUT/resume_gpu.err"; grep "resuming" "$OUT/resume_gpu.err"
    "$PY" -c "
import sys; from faderkit import checkpoint
m = checkpoint.read_meta('$OUT/run_resume/last.safetensors')
print('  resumed checkpoint: step', m['step'], 'precision', m['precision'])
sys.exit(0 if m['step'] == 8 else 1)"
}
check "resume CPU -> $DEVICE" resume_ok

say "eval and edit on $DEVICE"
BEST=$OUT/run_bf16_cl/best.safetensors
check "eval on $DEVICE" timeout 300 "${FK[@]}" eval "$BEST" --device "$DEVICE" --limit 32 --gt-images 8 --quiet \
    --out "$OUT/eval_$DEVICE"
[ -f "$OUT/eval_$DEVICE/report.md" ] && head -n 20 "$OUT/eval_$DEVICE/report.md"
FACE=$(ls "$OUT/faces/img_align_celeba" | tail -n 1)
edit_agrees() {
    "${FK[@]}" edit "$OUT/faces/img_align_celeba/$FACE" -c "$BEST" --set Smiling=1 -o "$OUT/edit_cpu.png" \
        --device cpu >/dev/null || return 1
    "${FK[@]}" edit "$OUT/faces/img_align_celeba/$FACE" -c "$BEST" --set Smiling=1 -o "$OUT/edit_gpu.png" \
        --device "$DEVICE" >/dev/null || return 1
    "$PY" - "$OUT/edit_cpu.png" "$OUT/edit_gpu.png" <<'EOF'
import sys
import numpy as np
from PIL import Image
a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in sys.argv[1:3])
d = np.abs(a - b)
print(f"  CPU vs GPU edit: max {d.max()} grey levels, 99th percentile {np.percentile(d, 99):.0f}, mean {d.mean():.2f}")
sys.exit(0 if a.shape == b.shape and np.percentile(d, 99) <= 4 and d.mean() <= 1.0 else 1)
EOF
}
check "edit on $DEVICE agrees with the CPU's" edit_agrees

say "one-process DDP smoke through faderkit's own path"
ddp_ok() {
    FADERKIT_DDP=1 timeout 300 "$PY" -m torch.distributed.run --standalone --nproc_per_node 1 -m faderkit.cli train \
        "$RECIPE" "${SMALL[@]}" --set train.schedule.steps=20 --set train.speed.amp=bf16 --device "$DEVICE" --quiet \
        --run-dir "$OUT/run_ddp" >/dev/null 2>"$OUT/ddp.err" || { tail -n 5 "$OUT/ddp.err"; return 1; }
    head -n 1 "$OUT/ddp.err"; figures "$OUT/run_ddp"
}
check "DDP ($([ "$DEVICE" = cuda ] && echo NCCL || echo gloo), one process)" ddp_ok

say "done: $([ $FAILED = 0 ] && echo 'every check passed' || echo 'some checks FAILED') (outputs in $OUT)"
exit $FAILED
