"""Eval's pictures: each attribute flipped, and each binary attribute slid, for the first images (laid out by
faderkit/tiles.py; training's own sample grids are train/samples.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..tiles import tile, value_label
from ..sliders import check_sweepable
from ..imageio import save_image, to_uint8, to_unit
from ..interfaces import Split
from ..model import DEFAULT_MODE, OUTPUT_MODES, edited
from .edits import target_block, target_labels


@torch.no_grad()
def flip_rows(editor, x: torch.Tensor, y: torch.Tensor, alpha: float, mode: str) -> tuple[torch.Tensor, list[str]]:
    """uint8 (R, 2 + A, 3, S, S): original, reconstruction, each attribute flipped (in ``mode``); and the titles."""
    attrs = editor.attributes
    enc = editor.model.encode(x, y)
    cols = [x, enc.recon]
    for i, a in enumerate(attrs):
        block = target_block(target_labels(y[:, i], a), a, alpha)
        cols.append(edited(x, enc.recon, enc.swapped(i, block), mode, enc.mask(i, block)))
    return to_uint8(torch.stack(cols, 1)).cpu(), ["orig", "recon"] + [a.name for a in attrs]


@torch.no_grad()
def sweep_rows(editor, x: torch.Tensor, y: torch.Tensor, attribute: str, values: Sequence[float],
               mode: str) -> tuple[torch.Tensor, list[str]]:
    """uint8 (R, 2 + V, 3, S, S): original, reconstruction (with its labels ``y``), then ``attribute`` slid over
    ``values`` (in ``mode``)."""
    i = check_sweepable(editor.attributes, attribute)
    enc = editor.model.encode(x, y)
    cols = [x, enc.recon]
    for v in values:
        blk = torch.tensor([1.0 - v, v], device=x.device).expand(len(x), 2)
        cols.append(edited(x, enc.recon, enc.swapped(i, blk), mode, enc.mask(i, blk)))
    return to_uint8(torch.stack(cols, 1)).cpu(), ["orig", "recon"] + [value_label(v) for v in values]


def write_grids(editor, split: Split, n: int, alpha: float, out: Path, attributes: Sequence[str],
                values: Sequence[float], rows: int) -> dict:
    """samples.png and sweep_<attribute>.png in the default output mode, the same with _<mode> for the others."""
    idx = np.arange(min(n, rows))
    x = to_unit(split.images(idx).to(editor.device))
    y = split.labels[torch.from_numpy(idx)].to(editor.device)
    files = {}
    for mode in OUTPUT_MODES:
        tail = "" if mode == DEFAULT_MODE else f"_{mode}"
        grid, titles = flip_rows(editor, x, y, alpha, mode)
        save_image(tile(grid, titles), out / f"samples{tail}.png")
        files[f"samples{tail}"] = f"samples{tail}.png"
        for name in attributes:
            grid, titles = sweep_rows(editor, x, y, name, values, mode)
            save_image(tile(grid, titles), out / f"sweep_{name}{tail}.png")
            files[f"sweep_{name}{tail}"] = f"sweep_{name}{tail}.png"
    return files
