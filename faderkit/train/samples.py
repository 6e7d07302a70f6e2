"""Training's sample grids (the run's samples/ folder): originals, reconstructions, and each attribute flipped,
one row per image. Eval's pictures are evaluate/grids.py; tiles.py lays titled grids out."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid

from ..codes import blocks, flipped_labels
from ..imageio import save_image, to_uint8


@torch.no_grad()
def flip_grid(model, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """uint8 grid: columns = original, reconstruction, then one column per attribute flipped."""
    attrs = model.attributes
    enc = model.encode(x, labels)
    flipped = model.code(flipped_labels(labels, attrs))
    cols = [x, enc.recon] + [enc.swapped(i, flipped[:, s]) for i, s in enumerate(blocks(attrs))]
    tiles = torch.stack(cols, 1).flatten(0, 1)  # row-major: image by image
    return to_uint8(make_grid(tiles.float().cpu(), nrow=len(cols), padding=2, pad_value=1.0))


def save_grid(model, x, labels, path: Path) -> None:
    was = model.training
    model.eval()
    try:
        save_image(flip_grid(model, x, labels), path)
    finally:
        model.train(was)
