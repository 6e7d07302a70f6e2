"""How the local output mode's mask trades locality for progress: eval's ground truth per mask setting.

    python benchmarks/local_mask.py runs/quickstart/best.safetensors [--split valid] [--images 300]
    python benchmarks/local_mask.py CKPT --masks 0.2:2:0 0.2:2:0.1 0.2:2:0.2 --data-root data/toyfaces

For a checkpoint whose dataset can re-render its images (toy faces), eval's ground-truth section
(faderkit/evaluate/groundtruth.py, unchanged) is computed once per mask THRESHOLD:GROW[:SHARE[:SHAREGROW]], the
local mode's figures read for each, beside residual's: slider progress at 1, cosine, the change outside the true
edit, flip PSNR, per attribute. The mask of faderkit/changemaps.py (a pixel keeps its change from THRESHOLD of its
map's peak, the map grown by GROW px first; there, from SHARE of the image's own largest change, grown by SHAREGROW
px; SHARE 0: the maps alone) is what ``--mode local`` uses with the defaults MASK_THRESHOLD:MASK_GROW:PEAK_SHARE:
PEAK_GROW; they were chosen with this on the toy faces' validation split (docs/quality.md, thirteenth and
fourteenth rounds). A checkpoint trained before the maps were stored gets them from the train split, as training
stores them now.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, also when a test loads this file

from common import add_rendered_args, gt_header, gt_row, open_rendered  # noqa: E402

from faderkit.changemaps import MASK_GROW, MASK_THRESHOLD, PEAK_GROW, PEAK_SHARE, MaskSetting  # noqa: E402
from faderkit.evaluate.groundtruth import ground_truth  # noqa: E402


def mask_setting(text: str) -> MaskSetting:
    parts = text.split(":")
    try:
        if not 2 <= len(parts) <= 4:
            raise ValueError
        setting = MaskSetting(float(parts[0]), int(parts[1]), float(parts[2]) if len(parts) > 2 else PEAK_SHARE,
                              int(parts[3]) if len(parts) > 3 else PEAK_GROW)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give THRESHOLD:GROW[:SHARE[:SHAREGROW]], e.g. 0.2:2:0.1") from None
    if not (0 < setting.threshold <= 1 and 0 <= setting.grow <= 8 and 0 <= setting.peak_share <= 1
            and 0 <= setting.peak_grow <= 8):
        raise argparse.ArgumentTypeError(f"{text!r}: THRESHOLD in (0, 1], GROW in 0..8 px, SHARE in [0, 1], "
                                         "SHAREGROW in 0..8 px")
    return setting


def label(setting: MaskSetting) -> str:
    return (f"threshold {setting.threshold:g}, grow {setting.grow}, own share {setting.peak_share:g}, grow "
            f"{setting.peak_grow}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_rendered_args(ap, "the split measured [default: valid, where the mask is chosen]")
    ap.add_argument("--masks", type=mask_setting, nargs="+", metavar="THRESHOLD:GROW[:SHARE[:SHAREGROW]]",
                    default=[MaskSetting(MASK_THRESHOLD, MASK_GROW, 0.0), MaskSetting(),
                             MaskSetting(MASK_THRESHOLD, MASK_GROW, 2 * PEAK_SHARE)])
    args = ap.parse_args(argv)
    opened = open_rendered(args)
    if opened is None:
        return 1
    editor, dataset, split, n, names = opened
    model = editor.model
    columns = ["progress", "cosine", "outside", "flip_psnr"]
    print(gt_header(["mask"], columns))
    for i, setting in enumerate(args.masks):
        model.mask_setting = setting
        with torch.no_grad():
            gt = ground_truth(model, dataset, split, n)
        if i == 0:
            print(gt_row(["none (residual)"], gt, "residual", names, columns))
        print(gt_row([label(setting)], gt, "local", names, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
