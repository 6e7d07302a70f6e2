"""Write a toy-faces dataset in a real CelebA on-disk layout (original, kaggle or torchvision), reproducibly and atomically.

Image ``i`` (1-based) depends only on ``(seed, i)``: :func:`identity_and_attributes` rebuilds its
identity and labels at any time, which is what makes counterfactual ground truth possible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from faderkit.errors import FaderkitError
from faderkit.synthetic import atomic_folder, check_count_and_seed, write_in_chunks

from .layouts import LAYOUTS, Row, data_folder, image_folder, write_lists
from .render import (ATTRIBUTES, CENTRE, HEIGHT, WIDTH, Identity, five_landmarks, render, sample_attributes,
                     sample_identity)

#: Bump whenever a change to the renderer or sampler alters the images a seed produces.
GENERATOR_VERSION = 1
JPEG_QUALITY = 95


def identity_and_attributes(seed: int, i: int) -> tuple[Identity, dict[str, int]]:
    """The identity and binary attributes of image ``i`` (1-based) of the dataset made with ``seed``."""
    rng = np.random.default_rng([int(seed), int(i)])
    identity = sample_identity(rng)
    return identity, sample_attributes(rng)


def file_name(i: int) -> str:
    return f"{i:06d}.jpg"


def split_of(i: int, count: int) -> int:
    """0 train (first 80%), 1 valid (next 10%), 2 test (last 10%), like CelebA's partition file."""
    n_train, n_valid = (count * 8) // 10, count // 10
    return 0 if i <= n_train else 1 if i <= n_train + n_valid else 2


def _row(i: int, identity: Identity, attrs: dict[str, int]) -> Row:
    """What the lists say about image ``i``: labels, true landmarks and the head's box (the split is set later)."""
    marks = five_landmarks(identity, attrs)
    xy = [round(v) for name in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right") for v in marks[name]]
    w, h = identity.head_w * identity.scale, identity.head_h * identity.scale
    cx, cy = CENTRE[0] + identity.dx, CENTRE[1] + identity.dy
    box = [round(cx - w), round(cy - h), round(2 * w), round(2 * h)]
    return Row(file_name(i), [1 if attrs[a] else -1 for a in ATTRIBUTES], -1, xy, box)


def _write_range(args: tuple[str, int, int, int]) -> list[Row]:
    """Render and write images start..stop-1 into folder; returns their rows of the lists."""
    folder, seed, start, stop = args
    rows = []
    for i in range(start, stop):
        identity, attrs = identity_and_attributes(seed, i)
        Image.fromarray(render(identity, attrs)).save(
            os.path.join(folder, file_name(i)), format="JPEG", quality=JPEG_QUALITY
        )
        rows.append(_row(i, identity, attrs))
    return rows


def generate(out_dir: str | Path, count: int, seed: int = 0, progress: bool = True, workers: int = 2,
             layout: str = "original") -> Path:
    """Write ``count`` images and the CelebA lists into ``out_dir`` (which must not exist or be empty),
    in one of :data:`~.layouts.LAYOUTS`.

    Everything is written into a temporary folder beside ``out_dir`` and moved into place at the
    end, so an interrupted run never leaves a folder that looks complete. The same seed gives
    byte-identical files.
    """
    out_dir = Path(out_dir)
    if layout not in LAYOUTS:
        raise FaderkitError(f"toyfaces has no layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    count, seed = check_count_and_seed("toyfaces", count, seed, 10,
                                       "the 80/10/10 split needs one valid and one test face")
    with atomic_folder(out_dir, "toy faces") as tmp:
        images = image_folder(tmp, layout)
        images.mkdir(parents=True)
        rows = write_in_chunks(_write_range, images, seed, count, workers=workers, progress=progress,
                               label=f"writing toy faces to {out_dir}")
        for i, row in enumerate(rows, start=1):
            row.partition = split_of(i, count)
        folder = data_folder(tmp, layout)
        write_lists(folder, layout, list(ATTRIBUTES), rows)
        meta = {
            "generator": "faderkit toyfaces",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "count": count,
            "attributes": list(ATTRIBUTES),
            "size": [WIDTH, HEIGHT],
            "jpeg_quality": JPEG_QUALITY,
            "layout": layout,
        }
        (folder / "toyfaces.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir
