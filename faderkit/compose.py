"""Putting an edit back into the picture it came from, at that picture's own resolution.

The model sees a small square crop; what it changes there is resized to the crop's size in the
original and added to it, so every pixel outside the crop is left exactly as it was and the
pixels inside keep their own detail wherever the edit does not reach.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def resize_change(change: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """float (3, s, s) -> float (3, height, width), bilinear (antialiased when shrinking)."""
    shrink = width < change.shape[-1] or height < change.shape[-2]
    return F.interpolate(change[None].float(), size=(height, width), mode="bilinear", align_corners=False,
                         antialias=shrink)[0]


def paste_change(photo: np.ndarray, change: torch.Tensor, box: Sequence[int]) -> np.ndarray:
    """Add a model-resolution ``change`` back into ``photo`` over the crop ``box`` it came from.

    ``photo``: uint8 (H, W, 3); ``change``: float (3, s, s) in the model's [-1, 1] units (an edit
    minus what it edits); ``box``: (left, top, right, bottom), the crop the model saw. Returns a new
    uint8 (H, W, 3) array; pixels outside ``box`` are bit-identical to ``photo``.
    """
    left, top, right, bottom = (int(v) for v in box)
    up = resize_change(change.detach().cpu(), right - left, bottom - top).permute(1, 2, 0).numpy() * 127.5
    out = photo.copy()
    region = out[top:bottom, left:right].astype(np.float32) + up
    out[top:bottom, left:right] = np.clip(np.rint(region), 0, 255).astype(np.uint8)
    return out
