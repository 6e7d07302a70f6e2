"""Slider sweeps, for ``faderkit edit --sweep``, ``faderkit eval`` and Python: the values swept
(``START:STOP:COUNT``), and one image slid along them in a titled row."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from .codes import MAX_SLIDER
from .errors import FaderkitError
from .tiles import tile, value_label
from .interfaces import Attribute


def sweep_row(editor, image, attribute: str, values: Sequence[float], settings: Mapping[str, str | float] | None = None,
              *, mode: str | None = None, labels: bool = True, **choice) -> Image.Image:
    """One row per face edited (``choice``: ``face``, ``all_faces``, ``align``, ``locator``, as in
    ``Editor.edit``), at the model's size: the image as the model sees it, its reconstruction, then
    ``attribute`` slid over ``values`` (``settings`` hold for the whole row), under column titles
    unless ``labels`` is false. ``sweep_row(editor, "face.jpg", "Smiling", parse_values("-0.5:1.5:9"))``."""
    check_sweepable(editor.attributes, attribute)
    x = editor.prepare(image, **choice)
    recon = editor.edit_tensor(x, {}, "decoded")  # what the model makes of the image as it is
    row = torch.cat([x[:, None], recon[:, None], editor.sweep(x, attribute, values, settings or {}, mode)], 1)
    titles = ["orig", "recon"] + [value_label(v) for v in values] if labels else None
    return Image.fromarray(tile(row, titles).permute(1, 2, 0).numpy())


def parse_values(text: str, what: str = "sweep") -> list[float]:
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
    return name.strip(), parse_values(spec.strip(), f"--sweep {name.strip()}")


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
