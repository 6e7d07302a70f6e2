"""Would a stronger slider make a weak edit? eval's ground truth with the code pushed further than the slider.

    python benchmarks/slider_gain.py runs/quickstart/best.safetensors [--gains 1 1.4 1.8] [--split valid]

For a checkpoint whose dataset can re-render its images (toy faces), eval's ground-truth section
(faderkit/evaluate/groundtruth.py, unchanged) is computed once per gain g, with every slider value v asking the
decoder for the code y + g (v - y), y the image's own value (g = 1: eval's own edit; the image at its own value is
its reconstruction at every g), and measured against the render at v, as eval does. Per attribute: progress at 1,
cosine, size ratio, the change outside the true edit and flip PSNR, in the local and residual modes. A weak slider
whose direction is right would reach the true change at some g with its cosine and flip PSNR intact; one whose
stroke is wrong loses direction as g grows. docs/quality.md, fourteenth round, point 47: a diagnostic; nothing in
faderkit applies a gain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, also when a test loads this file

from common import add_rendered_args, gt_header, gt_row, open_rendered  # noqa: E402

from faderkit.codes import blocks  # noqa: E402
from faderkit.evaluate.groundtruth import ground_truth  # noqa: E402
from faderkit.model import Encoded  # noqa: E402


class _GainedEncoded(Encoded):
    """An encoded batch whose binary attributes' blocks move ``gain`` times as far from the image's own value."""

    def __init__(self, model, x, labels, gain: float):
        super().__init__(model, x, labels)
        self.gain = gain

    def swapped_code(self, i: int, block: torch.Tensor) -> torch.Tensor:
        s = blocks(self.model.attributes)[i]
        if s.stop - s.start == 2:  # binary: [1 - v, v]
            own = self.code[:, s][:, 1:]
            v = block.reshape(-1, 2)[:, 1:]
            v = own + self.gain * (v - own)
            block = torch.cat([1 - v, v], 1)
        return super().swapped_code(i, block)


class Gained:
    """``model`` as eval's ground truth reads it (attributes, parameters, encode), its edits pushed by ``gain``."""

    def __init__(self, model, gain: float):
        self.model, self.gain, self.attributes = model, gain, model.attributes

    def parameters(self):
        return self.model.parameters()

    def encode(self, x, labels):
        return _GainedEncoded(self.model, x, labels, self.gain)


def positive(text: str) -> float:
    try:
        g = float(text)
    except ValueError:
        g = -1.0
    if not 0 < g <= 10:
        raise argparse.ArgumentTypeError(f"{text!r}: a gain is a number in (0, 10]")
    return g


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_rendered_args(ap)
    ap.add_argument("--gains", type=positive, nargs="+", default=[1.0, 1.4, 1.8], metavar="G")
    args = ap.parse_args(argv)
    opened = open_rendered(args)
    if opened is None:
        return 1
    editor, dataset, split, n, names = opened
    model = editor.model
    columns = ["progress", "cosine", "ratio", "outside", "flip_psnr"]
    print(gt_header(["gain", "mode"], columns))
    for g in args.gains:
        with torch.no_grad():
            gt = ground_truth(Gained(model, g), dataset, split, n)
        for mode in ("local", "residual"):
            print(gt_row([f"{g:g}", mode], gt, mode, names, columns))
    return 0


if __name__ == "__main__":
    sys.exit(main())
