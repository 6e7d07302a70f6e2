"""Training throughput of the paper architecture: images/s and autoencoder updates/s, per speed option.

Times the Trainer's real iteration (data, discriminator step, autoencoder step) on toy faces
(data/bench-toyfaces-<count>, generated once), after warm-up, as the median of several timed
windows. Architecture: 5 layers from 32 feature maps (max 512) at 64 px, 6 at 128 and 256 px;
batch 32; 3 binary attributes (Smiling, Eyeglasses, Male); fp32 eager unless a row says otherwise.

Rows (each changes one thing from the recipe defaults):
  published   shared_batch=false: the discriminator step draws its own batch (published code's
              schedule, like issue 5's baseline): 64 images drawn per autoencoder update
  default     shared_batch=true (faderkit's default, the paper's algorithm): 32 images per update
  cl          channels_last        foreach / single: optimizer_impl
  CUDA only:  bf16 (amp), compile, fused (optimizer), bf16+compile

"images/s" counts images drawn (as the baseline does); "AE upd/s" counts autoencoder updates, which
is what decides how long a training run of N steps takes. A 2x in images/s from shared_batch alone
is no 2x in updates/s: compare both columns against the baseline.

    python benchmarks/train_throughput.py                        # everything (~10 min on 2 quiet CPU cores)
    python benchmarks/train_throughput.py --sizes 64 --variants published default
    python benchmarks/train_throughput.py --quick                # smoke run: figures meaningless
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile

import common

VARIANTS = {
    "published": ("shared_batch=false (published schedule)", {"shared_batch": False}, False),
    "default": ("shared_batch=true (default)", {}, False),
    "cl": ("channels_last", {"channels_last": True}, False),
    "foreach": ("optimizer_impl=foreach", {"optimizer_impl": "foreach"}, False),
    "single": ("optimizer_impl=single", {"optimizer_impl": "single"}, False),
    "bf16": ("amp=bf16", {"amp": "bf16"}, True),
    "compile": ("compile=true", {"compile": True}, True),
    "fused": ("optimizer_impl=fused", {"optimizer_impl": "fused"}, True),
    "bf16+compile": ("amp=bf16, compile=true", {"amp": "bf16", "compile": True}, True),
}


def measure(root, size: int, train: dict, args, device: str) -> dict:
    """Build a Trainer for the paper recipe at ``size`` and time its _iteration."""
    import torch

    from faderkit.recipe import validate
    from faderkit.train import Trainer

    recipe = validate(common.paper_recipe_dict(root, size, args.layers.get(size), args.batch_size,
                                               threads=args.threads, **train))
    with tempfile.TemporaryDirectory(prefix="faderkit-bench-") as tmp:
        trainer = Trainer(recipe, tmp, device=device, progress=False, log=lambda m: None)
        trainer._setup()
        trainer.model.train()
        gen = torch.Generator().manual_seed(0)
        cuda = trainer.device.type == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()

        def step():
            trainer._iteration(gen)
            trainer.step += 1

        sync = torch.cuda.synchronize if cuda else (lambda: None)
        t = common.time_iterations(step, args.warmup, args.windows, args.window_iters, args.window_seconds, sync)
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        del trainer
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    ipi = common.images_per_iteration(recipe)
    return {"images_per_iter": ipi, "images_per_s": ipi / t["s_per_iter"], "ae_updates_per_s": 1 / t["s_per_iter"],
            "peak_gpu_mib": peak, **t}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256], choices=[64, 128, 256])
    ap.add_argument("--variants", nargs="+", choices=list(VARIANTS), metavar="NAME",
                    help=f"rows to run, of: {', '.join(VARIANTS)} [default: all that apply to the device]")
    ap.add_argument("--layers", nargs="+", default=[], metavar="SIZE=N",
                    help="override the layer count of a size, e.g. 128=5 [default: 64=5 128=6 256=6]")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--count", type=int, default=1000, help="toy faces to generate once and train on")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    ap.add_argument("--windows", type=int, default=5, help="timed windows; the median is reported")
    ap.add_argument("--window-iters", type=int, default=0, help="iterations per window (0: fill --window-seconds)")
    ap.add_argument("--window-seconds", type=float, default=4.0)
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 64 px, batch 8, 200 faces, 1 warm-up, 2 windows of 1 iteration")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_size, args.count = [64] if args.sizes == [64, 128, 256] else args.sizes, 8, 200
        args.warmup, args.windows, args.window_iters = 1, 2, 1
    args.layers = {**common.LAYERS, **{int(k): int(v) for k, v in (s.split("=") for s in args.layers)}}
    common.set_threads(args.threads)

    import torch

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    names = args.variants or [k for k, (_, _, gpu) in VARIANTS.items() if device == "cuda" or not gpu]
    root = common.ensure_toyfaces(args.count)
    results, rows = [], []
    for size in args.sizes:
        common.open_toyfaces(root, size)  # build the uint8 cache outside the timing
        # the baseline's settings: batch 32 and the default layer count
        same = args.batch_size == 32 and args.layers[size] == common.LAYERS[size]
        base = common.BASELINE_IMG_S.get(size) if same else None
        for name in names:
            label, train, _ = VARIANTS[name]
            print(f"{size} px, {label} ...", file=sys.stderr, flush=True)
            r = measure(root, size, train, args, device)
            r.update(size=size, variant=name, label=label, n_layers=args.layers[size], train=train,
                     baseline_images_per_s=base,
                     images_x_baseline=r["images_per_s"] / base if base else None,
                     ae_updates_x_baseline=(r["ae_updates_per_s"] / (base / common.BASELINE_IMAGES_PER_ITER)
                                            if base else None))
            results.append(r)
            rows.append([f"{size} px ({args.layers[size]} layers)", label, r["images_per_iter"],
                         common.fmt(r["images_per_s"]), common.fmt(r["ae_updates_per_s"], 2),
                         common.fmt(r["images_x_baseline"], 2), common.fmt(r["ae_updates_x_baseline"], 2),
                         common.fmt(r["peak_gpu_mib"], 0)])
    notes = [f"baseline (issue 5, 2-core CPU, published schedule, {common.BASELINE_IMAGES_PER_ITER} images per AE "
             f"update): 64 px {common.BASELINE_IMG_S[64]:g} img/s = {common.BASELINE_IMG_S[64] / 64:.2f} AE upd/s; "
             f"256 px {common.BASELINE_IMG_S[256]:g} img/s = {common.BASELINE_IMG_S[256] / 64:.2f} AE upd/s",
             "targets (2-core CPU): 64 px >= 130 img/s (2x); 256 px >= 1.5x the baseline",
             f"device {device}, {args.threads} threads, batch {args.batch_size}, median of {args.windows} windows "
             f"after {args.warmup} warm-up iterations"]
    common.print_table("training throughput (Trainer._iteration, toy faces)",
                       ["size", "variant", "img/iter", "images/s", "AE upd/s", "x base img/s", "x base upd/s",
                        "peak GPU MiB"], rows, notes)
    env = common.environment(device, args.threads)
    common.write_json(args.json, {"benchmark": "train_throughput", "environment": env,
                                  "settings": {k: v for k, v in vars(args).items() if k != "json"}, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
