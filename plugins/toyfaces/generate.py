"""Write a toy-faces dataset in the real CelebA on-disk layout, reproducibly and atomically.

Image ``i`` (1-based) depends only on ``(seed, i)``: :func:`identity_and_attributes` rebuilds its
identity and labels at any time, which is what makes counterfactual ground truth possible.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from faderkit.synthetic import atomic_folder, check_count_and_seed, write_in_chunks

from .render import ATTRIBUTES, HEIGHT, WIDTH, Identity, render, sample_attributes, sample_identity

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


def _attr_line(i: int, attrs: dict[str, int]) -> str:
    """One line of list_attr_celeba.txt, spaced like CelebA's: ``000001.jpg -1  1  1 -1 ...``."""
    return file_name(i) + " " + " ".join(f"{1 if attrs[a] else -1:>2d}" for a in ATTRIBUTES)


def _write_range(args: tuple[str, int, int, int]) -> list[str]:
    """Render and write images start..stop-1 into folder; returns their attribute lines."""
    folder, seed, start, stop = args
    lines = []
    for i in range(start, stop):
        identity, attrs = identity_and_attributes(seed, i)
        Image.fromarray(render(identity, attrs)).save(
            os.path.join(folder, file_name(i)), format="JPEG", quality=JPEG_QUALITY
        )
        lines.append(_attr_line(i, attrs))
    return lines


def generate(out_dir: str | Path, count: int, seed: int = 0, progress: bool = True, workers: int = 2) -> Path:
    """Write ``count`` images and the CelebA label files into ``out_dir`` (which must not exist or be empty).

    Everything is written into a temporary folder beside ``out_dir`` and moved into place at the
    end, so an interrupted run never leaves a folder that looks complete. The same seed gives
    byte-identical files.
    """
    out_dir = Path(out_dir)
    count, seed = check_count_and_seed("toyfaces", count, seed, 10,
                                       "the 80/10/10 split needs one valid and one test face")
    with atomic_folder(out_dir, "toy faces") as tmp:
        images = tmp / "img_align_celeba"
        images.mkdir()
        lines = [str(count), " ".join(ATTRIBUTES)]
        lines += write_in_chunks(_write_range, images, seed, count, workers=workers, progress=progress,
                                 label=f"writing toy faces to {out_dir}")
        (tmp / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
        (tmp / "list_eval_partition.txt").write_text(
            "".join(f"{file_name(i)} {split_of(i, count)}\n" for i in range(1, count + 1))
        )
        meta = {
            "generator": "faderkit toyfaces",
            "version": GENERATOR_VERSION,
            "seed": seed,
            "count": count,
            "attributes": list(ATTRIBUTES),
            "size": [WIDTH, HEIGHT],
            "jpeg_quality": JPEG_QUALITY,
        }
        (tmp / "toyfaces.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir

