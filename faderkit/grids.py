"""Image grids for people to look at: tiles in rows and columns, titled columns, slider sweeps."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .codes import MAX_SLIDER
from .errors import FaderkitError
from .interfaces import Attribute

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


# ---------------------------------------------------------------- sweep specifications

def parse_range(text: str, what: str = "sweep") -> list[float]:
    """``START:STOP:COUNT`` -> COUNT evenly spaced values from START to STOP inclusive."""
    parts = text.split(":")
    if len(parts) != 3:
        raise FaderkitError(f"malformed {what} range '{text}': expected START:STOP:COUNT, e.g. -0.5:1.5:9")
    try:
        start, stop = float(parts[0]), float(parts[1])
        count = int(parts[2])
    except ValueError:
        raise FaderkitError(f"malformed {what} range '{text}': START and STOP must be numbers and COUNT a whole "
                            "number, e.g. -0.5:1.5:9") from None
    if not (math.isfinite(start) and math.isfinite(stop)):
        raise FaderkitError(f"{what} range '{text}': START and STOP must be finite")
    if start == stop:
        raise FaderkitError(f"{what} range '{text}' is empty: START equals STOP")
    if start > stop:
        raise FaderkitError(f"{what} range '{text}' is reversed: START is above STOP; write it as {parts[1]}:{parts[0]}:{parts[2]}")
    if count < 2:
        raise FaderkitError(f"{what} range '{text}' is empty: COUNT must be at least 2")
    if count > 64:
        raise FaderkitError(f"{what} range '{text}': COUNT is at most 64")
    if max(abs(start), abs(stop)) > MAX_SLIDER:
        raise FaderkitError(f"{what} range '{text}': sliders go from -{MAX_SLIDER:g} to {MAX_SLIDER:g}")
    return [round(float(v), 6) for v in np.linspace(start, stop, count)]


def parse_sweep(text: str) -> tuple[str, list[float]]:
    """``Smiling=-0.5:1.5:9`` -> ("Smiling", [-0.5, -0.25, ..., 1.5])."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise FaderkitError(f"malformed --sweep '{text}': expected ATTRIBUTE=START:STOP:COUNT, e.g. Smiling=-0.5:1.5:9")
    return name.strip(), parse_range(spec.strip(), f"--sweep {name.strip()}")


def check_sweepable(attributes: Sequence[Attribute], name: str) -> int:
    """Index of the binary attribute ``name``; a one-line error for unknown or categorical ones."""
    names = [a.name for a in attributes]
    if name not in names:
        raise FaderkitError(f"cannot sweep '{name}': unknown attribute; this model has: {', '.join(names)}")
    i = names.index(name)
    if not attributes[i].binary:
        raise FaderkitError(f"cannot sweep '{name}': it is categorical ({', '.join(attributes[i].values)}); "
                            "set one of its values with --set instead")
    return i
