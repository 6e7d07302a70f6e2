"""Putting an edit back into the picture it came from, at that picture's own resolution.

The model sees a small square (an axis-aligned crop, or a face aligned by a similarity transform:
see :mod:`faderkit.photo.align`). What it makes there is mapped back through the inverse transform and
blended over the photo with a mask that is 1 inside the square and, when ``feather`` > 0, falls
smoothly to 0 towards its edges. Pixels where the mask is 0 are copied bit for bit; only the
photo's box around the square is computed, so a 12-megapixel photo costs what its face does.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .align import Placement, box_placement, sample

#: Default width of the mask's ramp, as a fraction of the square's side (aligned faces).
FEATHER = 0.12


def resize_change(change: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """float (3, s, s) -> float (3, height, width), bilinear (antialiased when shrinking)."""
    shrink = width < change.shape[-1] or height < change.shape[-2]
    return F.interpolate(change[None].float(), size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrink)[0]


def feather_mask(u: torch.Tensor, v: torch.Tensor, size: int, feather: float) -> torch.Tensor:
    """The blend weight at model positions (u, v): 1 inside the square, 0 outside, ramping smoothly
    (smoothstep) over ``feather`` x size pixels inside its edges; ``feather`` 0: a hard edge."""
    lo, hi = -0.5, size - 0.5
    if feather <= 0:
        return ((u >= lo) & (u <= hi) & (v >= lo) & (v <= hi)).to(torch.float32)
    ramp = feather * size

    def one(t):
        d = torch.clamp(torch.minimum(t - lo, hi - t) / ramp, 0, 1)
        return d * d * (3 - 2 * d)

    return (one(u) * one(v)).to(torch.float32)


def paste(photo: np.ndarray, image: torch.Tensor, placement: Placement, mode: str = "residual",
          feather: float = FEATHER) -> np.ndarray:
    """Blend a model-resolution ``image`` back into ``photo`` through ``placement``.

    ``photo``: uint8 (H, W, 3). ``image``: float (3, S, S) in the model's [-1, 1] units: with
    ``mode="residual"`` a change (an edit minus what it edits), added; with ``"decoded"`` the
    decoder's image, which replaces the photo. Returns a new uint8 (H, W, 3) array: photo * (1 - m)
    + result * m, with m the mask; pixels where m is 0 are bit-identical to ``photo``.
    """
    h, w = photo.shape[:2]
    left, top, right, bottom = placement.bounds(w, h)
    out = photo.copy()
    if right <= left or bottom <= top:
        return out
    img = image.detach().float().cpu()
    size = placement.size
    matrix = placement.matrix
    scale = placement.scale
    if scale < 1:  # the square is smaller in the photo than the model's: shrink it first, without aliasing
        small = max(1, round(size * scale))
        img = resize_change(img, small, small)
        matrix = matrix @ box_placement((0, 0, size, size), small).matrix
    inv = np.linalg.inv(matrix)
    # photo pixel (x, y) of the box -> position in the (possibly shrunk) model image
    to_img = inv @ np.array([[1, 0, left], [0, 1, top], [0, 0, 1.0]])
    bh, bw = bottom - top, right - left
    values = sample(img[None] * 127.5, to_img, bh, bw, "bilinear", "border")[0]
    # the mask is a function of the position in the model's own square (float32 positions: exact to
    # a thousandth of a pixel in a 12-megapixel photo)
    to_model = np.linalg.inv(placement.matrix) @ np.array([[1, 0, left], [0, 1, top], [0, 0, 1.0]])
    xs, ys = torch.arange(bw, dtype=torch.float64), torch.arange(bh, dtype=torch.float64)
    u = (to_model[0, 0] * xs + to_model[0, 2]).float()[None, :] + (to_model[0, 1] * ys).float()[:, None]
    v = (to_model[1, 0] * xs + to_model[1, 2]).float()[None, :] + (to_model[1, 1] * ys).float()[:, None]
    mask = feather_mask(u, v, size, feather)[..., None]
    values = values.permute(1, 2, 0)
    blended = torch.from_numpy(out[top:bottom, left:right]).float()
    if mode == "residual":
        blended += values * mask
    else:
        blended += (values + 127.5 - blended) * mask
    # where the mask is 0 the sum adds exactly 0 to a whole number: those pixels come back bit-identical
    out[top:bottom, left:right] = blended.round_().clamp_(0, 255).to(torch.uint8).numpy()
    return out


def paste_changes(photo: np.ndarray, changes: torch.Tensor, placements: Sequence[Placement]) -> np.ndarray:
    """Add each face's model-resolution change (``changes``, float (B, 3, S, S)) back into ``photo`` through
    its placement (:func:`paste`, feathered)."""
    for placement, change in zip(placements, changes):
        photo = paste(photo, change, placement)
    return photo


def paste_change(photo: np.ndarray, change: torch.Tensor, box: Sequence[int]) -> np.ndarray:
    """Add a model-resolution ``change`` back into ``photo`` over the axis-aligned crop ``box`` it came
    from (hard-edged: every pixel outside ``box`` is bit-identical to ``photo``)."""
    return paste(photo, change, box_placement(box, change.shape[-1]), "residual", feather=0)
