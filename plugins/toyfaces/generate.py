"""Write a toy-faces dataset in the real CelebA on-disk layout, reproducibly and atomically.

Image ``i`` (1-based) depends only on ``(seed, i)``: :func:`identity_and_attributes` rebuilds its
identity and labels at any time, which is what makes counterfactual ground truth possible.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
from PIL import Image

from faderkit.errors import FaderkitError

from .render import ATTRIBUTES, HEIGHT, WIDTH, Identity, render, sample_attributes, sample_identity

#: Bump whenever a change to the renderer or sampler alters the images a seed produces.
GENERATOR_VERSION = 1
JPEG_QUALITY = 95
#: Below this many images a process pool costs more than it saves.
_POOL_MIN = 400
_CHUNK = 100


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
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise FaderkitError(f"toyfaces count must be a positive integer, not {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FaderkitError(f"toyfaces seed must be a non-negative integer, not {seed!r}")
    count, seed = int(count), int(seed)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FaderkitError(f"{out_dir} already exists and is not empty; choose a new folder for the toy faces")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    except OSError as exc:
        raise FaderkitError(f"cannot write the toy faces to {out_dir}: {exc.strerror or exc}") from None
    try:
        images = tmp / "img_align_celeba"
        images.mkdir()
        chunks = [(str(images), seed, s, min(s + _CHUNK, count + 1)) for s in range(1, count + 1, _CHUNK)]
        lines = [str(count), " ".join(ATTRIBUTES)]
        with _progress(progress, count, out_dir) as advance:
            if workers > 1 and count >= _POOL_MIN and "fork" in get_all_start_methods() and sys.platform != "darwin":
                # fork, not spawn: spawn re-runs the caller's script, which breaks unguarded scripts.
                with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                    for chunk_lines in pool.map(_write_range, chunks):  # in order
                        lines += chunk_lines
                        advance(len(chunk_lines))
            else:
                for chunk in chunks:
                    chunk_lines = _write_range(chunk)
                    lines += chunk_lines
                    advance(len(chunk_lines))
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
        tmp.chmod(0o755)  # mkdtemp makes it private
        try:
            if out_dir.exists():
                out_dir.rmdir()  # empty (checked above); os.replace cannot move a folder onto one on every OS
            os.replace(tmp, out_dir)
        except OSError:
            if out_dir.exists() and any(out_dir.iterdir()):  # another process finished first
                raise FaderkitError(f"{out_dir} was filled by someone else while the toy faces were being written") from None
            raise
    except OSError as exc:  # disk full, permissions...
        shutil.rmtree(tmp, ignore_errors=True)
        raise FaderkitError(f"cannot write the toy faces to {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


class _progress:
    """A rich progress bar on stderr (only on a terminal, and only if ``enabled``); yields ``advance(n)``."""

    def __init__(self, enabled: bool, total: int, out_dir: Path):
        self.enabled, self.total, self.out_dir = enabled, total, out_dir
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.bar = Progress(
            TextColumn(f"writing toy faces to {self.out_dir}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        )
        self.bar.__enter__()
        task = self.bar.add_task("render", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
