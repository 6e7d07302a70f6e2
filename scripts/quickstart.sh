#!/usr/bin/env bash
# The main job: train the quickstart recipe on toy faces (generated on first use), then edit a
# held-out test face with the Smiling slider at 0, 0.5 and 1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
run=${RUN_DIR:-runs/quickstart}
if [ -d "$run" ]; then resume=--resume; else resume=; fi   # an interrupted run continues
.venv/bin/faderkit train recipes/quickstart.yaml --run-dir "$run" $resume
face=data/toyfaces/img_align_celeba/009001.jpg   # first image of the test split
for s in 0 0.5 1; do
    .venv/bin/faderkit edit "$face" --checkpoint "$run/best.safetensors" --set Smiling=$s --compare -o "$run/edit_smiling_$s.png"
done
echo "sample grids: $run/samples/   edits: $run/edit_smiling_*.png"
