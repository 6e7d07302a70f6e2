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
# your own photo: a toy face turned and enlarged inside a larger picture; edit finds it, aligns it like
# the training data, edits it and puts the change back at the picture's full resolution
.venv/bin/python scripts/pasted_face.py "$face" "$run/photo.png"
.venv/bin/faderkit edit "$run/photo.png" --checkpoint "$run/best.safetensors" --set Smiling=1 \
    --show-faces "$run/photo_faces.png" --compare -o "$run/edit_photo_smiling.png"
echo "sample grids: $run/samples/   edits: $run/edit_smiling_*.png, $run/edit_photo_smiling.png (faces found: $run/photo_faces.png)"
