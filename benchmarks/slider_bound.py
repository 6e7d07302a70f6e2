"""Where a slider's progress is lost: the latent, or the decoder's drawing?

    python benchmarks/slider_bound.py runs/quickstart/best.safetensors [--images 200] [--data-root DIR]

For a checkpoint whose dataset can re-render its images with other attributes (toy faces), each binary
attribute, over test images, with d = render(attribute 1) - render(attribute 0) the true change and
every figure a progress <e, d> / |d|^2 as in `faderkit eval` (1 = the whole true change):

- edit:        e = D(E(x), y with the attribute 1) - D(E(x), y with it 0), eval's slider progress at 1;
- decoder:     e = D(E(render 1), y 1) - D(E(render 0), y 0), the two true images reconstructed with their
               own labels: what the autoencoder draws of the change when nothing has to be edited. An edit
               cannot beat it by more than what the latent leaks;
- cosine, ratio: the edit's and the decoder's progress split into direction (cosine between e and d: low
               when the stroke is blurred or misplaced) and size (|e| / |d|: low when it is weak), per image;
- through z:   e = D(E(render 1), y 0) - D(E(render 0), y 0), the part of the change that reaches the
               output through the latent (0 when the latent hides the attribute);
- blur s:      e = the true change blurred by a Gaussian of s pixels: how sharp a decoder must be.

An edit near the decoder figure with ~0 through z: the latent does its job and the decoder's
reconstruction of the attribute's pixels is what limits the slider.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, also when a test loads this file

from common import add_checkpoint_args, open_checkpoint  # noqa: E402

from faderkit.editor import Editor  # noqa: E402
from faderkit.evaluate.edits import unit  # noqa: E402
from faderkit.evaluate.groundtruth import can_render, direction_and_size, progress_along  # noqa: E402
from faderkit.imageio import to_unit  # noqa: E402

BLURS = (0.5, 1.0)


def progress(e: torch.Tensor, d: torch.Tensor) -> float:
    """Mean of <e, d> / |d|^2 over the images the attribute changes at all (eval's measure)."""
    return float(progress_along(e[:, None], d).mean())


def mean(t: torch.Tensor) -> float:
    return float(t.mean())


@torch.no_grad()
def bounds(editor: Editor, dataset, split: str, n: int) -> dict[str, dict[str, float]]:
    model, the_split = editor.model, dataset.split(split)
    n = min(n, len(the_split))
    x = to_unit(the_split.images(np.arange(n)))
    y = the_split.labels[:n]
    z = model.encoder(x)
    out = {}
    for i, attr in enumerate(editor.attributes):
        if not attr.binary:
            continue
        r0, r1 = (torch.stack([dataset.render(split, k, {attr.name: v}) for k in range(n)]).float() / 255
                  for v in (0.0, 1.0))
        y0, y1 = y.clone(), y.clone()
        y0[:, i], y1[:, i] = 0, 1
        c0, c1 = model.code(y0), model.code(y1)
        z0, z1 = model.encoder(r0 * 2 - 1), model.encoder(r1 * 2 - 1)
        d = r1 - r0
        edit = unit(model.decoder(z, c1)) - unit(model.decoder(z, c0))
        drawn = unit(model.decoder(z1, c1)) - unit(model.decoder(z0, c0))
        row = {"edit": progress(edit, d), "edit cosine": mean(direction_and_size(edit, d)[0]),
               "edit ratio": mean(direction_and_size(edit, d)[1]),
               "decoder": progress(drawn, d), "decoder cosine": mean(direction_and_size(drawn, d)[0]),
               "decoder ratio": mean(direction_and_size(drawn, d)[1]),
               "through z": progress(unit(model.decoder(z1, c0)) - unit(model.decoder(z0, c0)), d)}
        for s in BLURS:
            row[f"blur {s:g}"] = progress(TF.gaussian_blur(d, 5, s), d)
        out[attr.name] = row
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_args(ap)
    ap.add_argument("--images", type=int, default=200, help="test images per attribute (default 200)")
    ap.add_argument("--split", default="test")
    a = ap.parse_args(argv)
    editor, recipe, dataset = open_checkpoint(a)
    editor.model.eval()
    if not can_render(dataset):
        sys.exit(f"{recipe.data.name} cannot re-render its images with other attributes: no ground truth to compare with")
    rows = bounds(editor, dataset, a.split, a.images)
    cols = list(next(iter(rows.values())))
    print(f"slider progress at 1 ({a.split} split, {a.images} images), {a.checkpoint}")
    print("| attribute | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for name, row in rows.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.2f}" for c in cols) + " |")


if __name__ == "__main__":
    main()
