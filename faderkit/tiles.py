"""Laying images out for people to look at: tiles in rows and columns under column titles (eval's grids and
slider sweeps use it)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


#: Pixels between tiles (white), as in the training sample grids.
PAD = 2
#: Height of the strip of column titles above a titled grid.
HEADER = 12


def tile(rows: torch.Tensor, titles: Sequence[str] | None = None, pad: int = PAD) -> torch.Tensor:
    """uint8 (R, C, 3, S, S) -> one uint8 (3, H, W) image on white.

    H = [HEADER +] pad + R (S + pad), W = pad + C (S + pad); ``titles`` (one per column) go in a
    strip above the first row.
    """
    r, c, ch, s, _ = rows.shape
    top = HEADER if titles else 0
    out = torch.full((ch, top + pad + r * (s + pad), pad + c * (s + pad)), 255, dtype=torch.uint8)
    for i in range(r):
        for j in range(c):
            y, x = top + pad + i * (s + pad), pad + j * (s + pad)
            out[:, y:y + s, x:x + s] = rows[i, j]
    if titles:
        if len(titles) != c:
            raise ValueError(f"{len(titles)} titles for {c} columns")
        out = _write_titles(out, titles, s, pad)
    return out


def _write_titles(grid: torch.Tensor, titles: Sequence[str], s: int, pad: int) -> torch.Tensor:
    img = Image.fromarray(grid.permute(1, 2, 0).numpy())
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    for j, text in enumerate(titles):
        left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        while right - left > s and len(text) > 1:  # cut a title to its tile's width
            text = text[:-1]
            left, _, right, _ = draw.textbbox((0, 0), text, font=font)
        x = pad + j * (s + pad) + (s - (right - left)) / 2
        draw.text((max(0.0, x), 0), text, fill=(0, 0, 0), font=font)
    return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())


def value_label(v: float) -> str:
    return f"{v:g}"
