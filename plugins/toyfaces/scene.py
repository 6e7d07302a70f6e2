"""A toy face placed into a larger picture at a known rotation, scale and position: ground truth
for face alignment and paste-back (the tests, the latency benchmark and the quickstart use it)."""

from __future__ import annotations

import numpy as np
from PIL import Image


def place(face: np.ndarray, background: np.ndarray, angle: float, scale: float, centre: tuple[float, float]
          ) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (h, w, 3) ``face`` drawn into a copy of uint8 (H, W, 3) ``background``, turned by ``angle``
    degrees (counter-clockwise as seen), enlarged ``scale`` times, its centre at ``centre`` (x, y).

    Returns (picture, matrix): ``matrix`` (3x3) maps the face's pixels (x, y, 1) to the picture's.
    """
    h, w = face.shape[:2]
    a = np.deg2rad(angle)
    rot = scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # y down: counter-clockwise as seen
    m = np.eye(3)
    m[:2, :2] = rot
    m[:2, 2] = np.asarray(centre, float) - rot @ np.array([(w - 1) / 2, (h - 1) / 2])
    inv = np.linalg.inv(m)
    # PIL's affine maps output pixel corners; shift by half a pixel to map centres
    shift = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1.0]])
    coeffs = tuple((shift @ inv @ np.linalg.inv(shift))[:2].ravel())
    size = (background.shape[1], background.shape[0])
    drawn = Image.fromarray(face).transform(size, Image.AFFINE, coeffs, resample=Image.BICUBIC)
    mask = Image.new("L", (w, h), 255).transform(size, Image.AFFINE, coeffs, resample=Image.BILINEAR)
    out = Image.fromarray(background).convert("RGB")
    out.paste(drawn, (0, 0), mask)
    return np.asarray(out), m


def backdrop(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A stand-in photo when no real one is at hand: smooth colour fields with some grain."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(30, 225, (6, 8, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(small).resize((width, height), Image.BICUBIC), np.float32)
    grain = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(base + grain, 0, 255).astype(np.uint8)
