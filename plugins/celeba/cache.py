"""Decode, crop and resize every image once into a uint8 memory-mapped file (N, 3, S, S).

Decoding 200k JPEGs takes minutes; reading a batch from a memmap takes microseconds. The cache
is keyed by everything that decides its content (size, crop, decoder and each file's name, size
and mtime), so a changed dataset or setting gets a fresh cache instead of silently stale pixels.
A build writes a temporary file and renames it into place, manifest last: an interrupted build
never looks complete.

An image that cannot be decoded does not stop the build: its row stays black and the manifest
lists it with the reason. :func:`ensure_cache` then stops with every such file named
(``unreadable="stop"``, the default) or hands the list on for the dataset to leave those images
out (``"skip"``), so switching the policy never needs a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from contextlib import contextmanager
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
from PIL import Image
from pydantic import Field

from faderkit import Params, atomic
from faderkit.errors import FaderkitError
from faderkit.imageio import crop_box_for, crop_resize

log = logging.getLogger(__name__)

#: Bump when the decoding changes, so old caches are rebuilt rather than reused.
DECODER = "pil-lanczos/jpeg-draft-when-crop>=2x/v1"
#: Fewer images than this are decoded in-process: starting workers would cost more than it saves.
PARALLEL_MIN = 500
#: What to do with images that cannot be decoded (see the module docstring).
UNREADABLE = ("stop", "skip")


class ImageCacheParams(Params):
    """The ``data.params`` of every dataset that reads its images through this cache."""

    cache_dir: Path | None = Field(None, strict=False, description="where decoded images are cached; "
                                   "null: <root>/.faderkit-cache")
    unreadable: Literal["stop", "skip"] = Field(
        "stop", description="images that cannot be decoded: stop (name them and stop) or skip (leave them out, "
        "counted in metrics.jsonl); switching needs no rebuild of the cache")


@dataclass
class ImageCache:
    """A finished cache: the .u8 file and its shape; rows are read with ``pread`` into fresh buffers.

    Reading through a memmap maps the touched pages (and the kernel's fault-around neighbours)
    into the trainer, so its resident memory grows with the dataset although nothing is
    allocated; ``pread`` copies just the rows asked for and leaves the page cache to the kernel.
    """

    path: Path
    shape: tuple[int, int, int, int]
    key: str
    #: (row, file name, reason) of every image that could not be decoded; their rows are black.
    unreadable: tuple[tuple[int, str, str], ...] = ()
    _array: np.memmap | None = field(default=None, repr=False, compare=False)
    _fd: int | None = field(default=None, repr=False, compare=False)

    @property
    def array(self) -> np.memmap:
        """The whole cache as a read-only memmap (for tools; training reads with :meth:`read`)."""
        if self._array is None:
            self._array = np.memmap(self.path, dtype=np.uint8, mode="r", shape=self.shape)
        return self._array

    def read(self, rows: np.ndarray) -> np.ndarray:
        """uint8 (len(rows), 3, S, S) for the given cache rows, in order."""
        if not hasattr(os, "preadv"):  # platforms without preadv fall back to the memmap
            return np.ascontiguousarray(self.array[rows])
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty((len(rows),) + tuple(self.shape[1:]), dtype=np.uint8)
        size = out[0].nbytes if len(rows) else 0
        for i, row in enumerate(rows):
            if not 0 <= row < self.shape[0]:
                raise IndexError(f"cache row {row} out of range 0..{self.shape[0] - 1}")
            if os.preadv(self._fd, [out[i]], int(row) * size) != size:
                raise FaderkitError(f"image cache {self.path} is shorter than its manifest says; delete it to rebuild")
        return out

    def __getstate__(self):  # a memmap would pickle as a full copy of the data, an fd not at all: reopen
        return {**self.__dict__, "_array": None, "_fd": None}

    def __del__(self):
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass


def check_unreadable(value, dataset: str) -> str:
    """The ``unreadable`` parameter of a dataset that reads through this cache."""
    if value not in UNREADABLE:
        raise FaderkitError(f"{dataset}: unreadable must be 'stop' (name the bad images and stop) or 'skip' "
                            f"(leave them out and count them), got {value!r}")
    return value


def leave_out_unreadable(cache: ImageCache, dataset: str) -> tuple[np.ndarray, dict[str, int]]:
    """(usable mask over the cache rows, skipped counts) for a cache built with ``unreadable="skip"``;
    prints one line on stderr when images are left out."""
    usable = np.ones(cache.shape[0], dtype=bool)
    usable[[row for row, _, _ in cache.unreadable]] = False
    if cache.unreadable:
        row, name, why = cache.unreadable[0]
        print(f"{dataset}: left out {len(cache.unreadable)} unreadable image(s) of {cache.shape[0]}, "
              f"e.g. {name} ({why})", file=sys.stderr, flush=True)
    return usable, {"unreadable": len(cache.unreadable)}


def draft_scale(box: Sequence[int], image_size: tuple[int, int], size: int) -> int:
    """The JPEG DCT reduction (8, 4, 2 or 1) that leaves the result practically unchanged.

    Measured on photographs cropped and JPEG'd like CelebA: when the drafted crop is still at least
    twice the target, the mean difference from a full decode stays under 1 level (about 1.6 on
    smooth noise); at 64 px from a 2x draft (89 px crop) it reaches 2-3 levels, so no draft there.
    The box must divide exactly, so the crop in drafted pixels is the same region.
    """
    w, h = image_size
    cw, ch = box[2] - box[0], box[3] - box[1]
    for s in (8, 4, 2):
        if w % s == 0 and h % s == 0 and all(v % s == 0 for v in box) and min(cw, ch) // s >= 2 * size:
            return s
    return 1


def decode(path: str, size: int, native_size, crop_box) -> np.ndarray:
    """One image file -> uint8 (3, size, size): :func:`faderkit.imageio.crop_resize`, JPEGs drafted when harmless."""
    try:
        with Image.open(path) as im:
            box = crop_box_for(im.width, im.height, native_size, crop_box)
            s = draft_scale(box, im.size, size) if im.format == "JPEG" else 1
            if s == 1:
                return _chw(crop_resize(im, size, native_size, crop_box))
            drafted = (im.width // s, im.height // s)
            im.draft("RGB", drafted)
            if im.size == drafted:
                return _chw(crop_resize(im, size, drafted, tuple(v // s for v in box)))
        with Image.open(path) as im:  # the decoder picked another scale: decode in full instead
            return _chw(crop_resize(im, size, native_size, crop_box))
    except Exception as exc:  # noqa: BLE001 - a damaged file can make a decoder raise almost anything
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FaderkitError(f"cannot read image {path}: {reason}") from None


def _chw(hwc: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(hwc.transpose(2, 0, 1))


def _fill(out_path: str, shape, image_dir: str, names: list[str], start: int, native_size,
          crop_box) -> tuple[int, list[tuple[int, str, str]]]:
    """Decode names[i] into row start + i of the memmap at out_path (run in a worker process).

    Returns how many rows were done and the (row, name, reason) of those that could not be decoded.
    """
    mm = np.memmap(out_path, dtype=np.uint8, mode="r+", shape=tuple(shape))
    bad = []
    try:
        for i, name in enumerate(names):
            try:
                mm[start + i] = decode(os.path.join(image_dir, name), shape[2], native_size, crop_box)
            except FaderkitError as exc:
                bad.append((start + i, name, str(exc).split(": ", 1)[-1]))
        mm.flush()
    finally:
        del mm
    return len(names), bad


def fingerprint(image_dir: Path, files: Sequence[str], image_size: int, crop_box, native_size,
                listed_in: str = "the file list") -> str:
    """The cache key; stats every file, so a missing image is reported here, by name."""
    d = str(image_dir)
    parts = [json.dumps({"decoder": DECODER, "image_size": int(image_size),
                         "crop_box": list(crop_box or ()), "native_size": list(native_size or ())})]
    stat, join = os.stat, os.path.join
    for name in files:
        try:
            st = stat(join(d, name))
        except FileNotFoundError:
            raise FaderkitError(f"{name} is listed in {listed_in} but missing from {image_dir}") from None
        except OSError as exc:
            raise FaderkitError(f"cannot read {join(d, name)}: {exc.strerror or exc}") from None
        parts.append(f"{name}\0{st.st_size}\0{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _valid(u8: Path, manifest: Path, shape: tuple) -> tuple | None:
    """The unreadable list of a complete cache matching ``shape``; None when there is no such cache."""
    try:
        meta = json.loads(manifest.read_text())
        if tuple(meta["shape"]) == shape and u8.stat().st_size == math.prod(shape):
            return tuple((int(r), str(n), str(why)) for r, n, why in meta.get("unreadable", []))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def ensure_cache(image_dir: Path, files: Sequence[str], image_size: int, cache_dir: Path, *,
                 native_size=None, crop_box=None, listed_in: str = "the file list",
                 workers: int | None = None, label: str = "images", unreadable: str = "stop") -> ImageCache:
    """The cache of ``files`` (in this order) at ``image_size``: reused when valid, else built.

    ``unreadable="stop"`` raises a FaderkitError naming the images that cannot be decoded;
    ``"skip"`` returns the cache with them listed in ``ImageCache.unreadable``.
    """
    check_unreadable(unreadable, label)
    image_dir, cache_dir = Path(image_dir), Path(cache_dir)
    shape = (len(files), 3, int(image_size), int(image_size))
    key = fingerprint(image_dir, files, image_size, crop_box, native_size, listed_in)
    u8, manifest = cache_dir / f"{key}.u8", cache_dir / f"{key}.json"
    bad = _valid(u8, manifest, shape)
    if bad is None:
        _check_writable(cache_dir)
        with _exclusive(cache_dir / f"{key}.lock"):  # e.g. every rank of a distributed run: one builds
            bad = _valid(u8, manifest, shape)
            if bad is None:
                bad = _build_and_record(image_dir, files, image_size, u8, manifest, shape, key, native_size,
                                        crop_box, workers, label)
    if bad and unreadable == "stop":
        first = bad[0]
        more = f" and {len(bad) - 1} more (listed in {manifest})" if len(bad) > 1 else ""
        raise FaderkitError(f"cannot read image {image_dir / first[1]}: {first[2]}{more}; replace or delete it, "
                            "or set data.params.unreadable: skip to train without unreadable images")
    return ImageCache(u8, shape, key, bad)


@contextmanager
def _exclusive(lock: Path):
    try:
        import fcntl
    except ImportError:  # not POSIX: concurrent builders only duplicate work (os.replace is atomic)
        yield
        return
    with open(lock, "a+b") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.info("waiting for another process to finish building %s", lock.with_suffix(".u8"))
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build_and_record(image_dir, files, image_size, u8, manifest, shape, key, native_size, crop_box, workers,
                      label) -> tuple:
    bad = build(image_dir, files, u8, shape, native_size=native_size, crop_box=crop_box, workers=workers, label=label)
    meta = {"shape": list(shape), "image_size": int(image_size), "count": len(files),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "key": key, "decoder": DECODER,
            "crop_box": list(crop_box or ()), "native_size": list(native_size or ()),
            "source": str(image_dir.resolve()), "unreadable": [list(b) for b in bad]}
    atomic.write_text(manifest, json.dumps(meta, indent=1))
    if not bad:  # a build that met unreadable files may be a passing fault (a flaky disk): keep the old cache
        _remove_superseded(manifest.parent, key, meta)
    return tuple(bad)


def _remove_superseded(cache_dir: Path, key: str, meta: dict) -> None:
    """Delete older caches of the same images at the same size: they can never be valid again."""
    for other in cache_dir.glob("*.json"):
        if other.stem == key:
            continue
        try:
            m = json.loads(other.read_text())
            same = all(m.get(k) == meta[k] for k in ("source", "image_size", "crop_box", "native_size"))
        except (OSError, ValueError, AttributeError):
            continue
        if same:
            other.unlink(missing_ok=True)  # manifest first: a half-removed cache never looks complete
            other.with_suffix(".u8").unlink(missing_ok=True)
            other.with_suffix(".lock").unlink(missing_ok=True)
            log.info("removed superseded cache %s", other.stem)


def build(image_dir: Path, files: Sequence[str], out: Path, shape: tuple, *, native_size=None, crop_box=None,
          workers: int | None = None, label: str = "images") -> list[tuple[int, str, str]]:
    """Write the decoded images to ``out`` (via a temporary file), in parallel when there are many.

    Returns the (row, file name, reason) of the images that could not be decoded (left black).
    """
    _check_writable(out.parent)
    n, nbytes = shape[0], math.prod(shape)
    free = shutil.disk_usage(out.parent).free
    if nbytes + (64 << 20) > free:
        raise FaderkitError(f"not enough disk space in {out.parent} for the image cache: it needs "
                            f"{nbytes / 2**30:.1f} GiB, {free / 2**30:.1f} GiB free; pass cache_dir= elsewhere")
    workers = max(1, min(workers or os.cpu_count() or 1, 64))
    parallel = workers > 1 and n >= PARALLEL_MIN
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    description = f"caching {n:,} {label} at {shape[2]}px"
    args = (str(tmp), shape, str(image_dir))
    log.info("%s into %s (%d worker%s)", description, out, workers if parallel else 1, "s" if parallel else "")
    t0 = time.perf_counter()
    bad: list[tuple[int, str, str]] = []
    try:
        with open(tmp, "wb") as f:
            f.truncate(nbytes)  # sparse; every row is written exactly once
        if parallel:
            bad = _build_parallel(args, list(files), native_size, crop_box, workers, description)
        else:
            step = max(1, min(256, n // 100))
            with _progress(n, description) as advance:
                for s in range(0, n, step):
                    done, failed = _fill(*args, list(files[s:s + step]), s, native_size, crop_box)
                    bad += failed
                    advance(done)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dt = time.perf_counter() - t0
    log.info("cached %d %s in %.1fs (%.0f images/s)", n, label, dt, n / max(dt, 1e-9))
    return sorted(bad)


def _check_writable(d: Path) -> None:
    try:
        atomic.make_writable_folder(d)
    except OSError as exc:
        raise FaderkitError(f"cannot write the image cache in {d}: {exc.strerror or exc}; pass cache_dir= elsewhere") from None


def _build_parallel(args: tuple, files: list[str], native_size, crop_box, workers: int, description: str) -> list:
    n = len(files)
    chunk = max(16, min(1024, n // (workers * 16)))
    # fork starts workers at once and shares the imports; with fork the executor launches every
    # process at the first submit, i.e. before the progress bar starts its refresh thread.
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                      and sys.platform != "darwin" else None)
    with ProcessPoolExecutor(max_workers=min(workers, math.ceil(n / chunk)), mp_context=ctx) as pool:
        pending = {pool.submit(_fill, *args, files[s:s + chunk], s, native_size, crop_box) for s in range(0, n, chunk)}
        bad = []
        try:
            with _progress(n, description) as advance:
                while pending:
                    done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                    for fut in done:
                        count, failed = fut.result()  # re-raises a worker's error here
                        bad += failed
                        advance(count)
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
    return bad


class _progress:
    """A rich progress bar with images/s, shown only on a terminal."""

    def __init__(self, total: int, description: str):
        self.total, self.description = total, description

    def __enter__(self):
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                                   TimeRemainingColumn)
        from rich.text import Text

        class Rate(ProgressColumn):
            def render(self, task):  # the mean since the start: chunks finish in bursts
                speed = task.completed / task.elapsed if task.completed and task.elapsed else None
                return Text(f"{speed:,.0f} images/s" if speed else "? images/s", style="progress.data.speed")

        console = Console(stderr=True)
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), Rate(),
                            TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        self.bar.start()
        task = self.bar.add_task(self.description, total=self.total)
        return lambda k: self.bar.advance(task, k)

    def __exit__(self, *exc):
        self.bar.stop()
        return False
