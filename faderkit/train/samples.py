"""Training's sample grids (the run's samples/ folder): originals, reconstructions, and each attribute flipped,
one row per image; and the run's change maps, where each attribute changes the training images. Eval's pictures are
evaluate/grids.py; tiles.py lays titled grids out."""

from __future__ import annotations

from pathlib import Path

import torch
from torchvision.utils import make_grid

from ..changemaps import attribute_masks
from ..codes import blocks, flipped_labels
from ..imageio import save_image, to_uint8
from ..tiles import tile


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


def save_maps(maps: torch.Tensor, attributes, path: Path) -> None:
    """``change_maps.png``: per attribute (columns), its change map (top row: white where the attribute changes the
    training images most) and what of an edit's change the local output mode keeps there (bottom row)."""
    rows = torch.stack([maps.float().cpu(), attribute_masks(maps.float().cpu())])  # (2, A, S, S)
    grey = (rows.clamp(0, 1) * 255).round().to(torch.uint8)[:, :, None].expand(-1, -1, 3, -1, -1)
    save_image(tile(grey, [a.name for a in attributes]), path)
