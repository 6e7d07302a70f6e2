"""CelebA as distributed (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt).

The two text files are parsed with numpy over the whole byte buffer (202,599 lines in a fraction
of a second); only when something is wrong is the offending line looked at on its own, so every
error names the file and line. Images come from a memory-mapped cache built on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from faderkit.errors import FaderkitError
from faderkit.interfaces import Attribute, AttributeDataset, Split, select_attributes

from .cache import ImageCache, ensure_cache, leave_out_unreadable

IMAGE_DIR = "img_align_celeba"
ATTR_FILE = "list_attr_celeba.txt"
PARTITION_FILE = "list_eval_partition.txt"

#: Mean landmark positions in the 178 x 218 aligned images, as published for
#: list_landmarks_align_celeba.txt (the figures in faderkit's shared reference notes, rounded to
#: the pixel). A fallback: a reader of that file, where the user has it, may give the exact means.
PUBLISHED_LANDMARKS = {"left_eye": (69.0, 111.0), "right_eye": (108.0, 111.0), "nose": (88.0, 134.0),
                       "mouth_left": (73.0, 152.0), "mouth_right": (105.0, 152.0)}
_WS = np.zeros(256, dtype=bool)
_WS[[9, 10, 11, 12, 13, 32]] = True


class CelebASplit(Split):
    """Rows of one partition, in file order: labels in memory, images from the shared cache."""

    def __init__(self, name: str, labels: torch.Tensor, files: list[str], cache_index: np.ndarray,
                 cache: ImageCache):
        self.name, self.labels, self.files, self.cache_index = name, labels, files, cache_index
        self._cache = cache

    def images(self, indices: np.ndarray) -> torch.Tensor:
        rows = self.cache_index[np.asarray(indices, dtype=np.int64)]
        return torch.from_numpy(self._cache.read(rows))

    def __repr__(self) -> str:
        return f"CelebASplit({self.name!r}, {len(self)} images, {self.labels.shape[1]} attributes)"


class CelebA(AttributeDataset):
    """CelebA aligned faces: the published crop (rows 20..198, a 178x178 square), resized to ``image_size``."""

    native_size = (178, 218)
    crop_box = (0, 20, 178, 198)
    partitions = {"train": 0, "valid": 1, "test": 2}
    landmark_source = "published means of list_landmarks_align_celeba.txt (fallback figures)"

    def landmark_template(self) -> dict[str, tuple[float, float]]:
        """Where the aligned images put the five landmarks: ``edit`` aligns a photo's face onto these."""
        return dict(PUBLISHED_LANDMARKS)

    def __init__(self, root, image_size: int = 64, attributes: Sequence[str] | None = None,
                 cache_dir=None, unreadable: str = "stop"):
        """``cache_dir`` and ``unreadable`` come from the recipe's ``data.params``, checked by faderkit
        against :class:`~.cache.ImageCacheParams`."""
        self.unreadable = unreadable
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise FaderkitError(f"celeba: image_size must be a positive integer, got {image_size!r}")
        self.root = Path(root).expanduser()
        self.image_size = int(image_size)
        if not self.root.is_dir():
            raise FaderkitError(f"CelebA root {self.root} does not exist or is not a folder")
        missing = [n for n, ok in ((f"{IMAGE_DIR}/", (self.root / IMAGE_DIR).is_dir()),
                                   (ATTR_FILE, (self.root / ATTR_FILE).is_file()),
                                   (PARTITION_FILE, (self.root / PARTITION_FILE).is_file())) if not ok]
        if missing:
            raise FaderkitError(f"CelebA root {self.root} lacks {', '.join(missing)} "
                                f"(expected {IMAGE_DIR}/, {ATTR_FILE}, {PARTITION_FILE})")
        names, files, values = parse_attributes(self.root / ATTR_FILE)
        if not files:
            raise FaderkitError(f"{self.root / ATTR_FILE} lists no images")
        columns = select_attributes(attributes, names, "celeba", source=str(self.root / ATTR_FILE))
        self.attributes = tuple(Attribute(names[c]) for c in columns)
        self.files: list[str] = files
        self._labels = values[:, columns]
        self._partition = _partition_of(files, self.root / PARTITION_FILE, self.root / ATTR_FILE)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".faderkit-cache"
        self._cache: ImageCache | None = None
        self._splits: dict[str, CelebASplit] = {}
        self._usable = np.ones(len(files), dtype=bool)
        self.skipped = {"unreadable": 0}

    def ensure_cache(self) -> ImageCache:
        """The image cache of every listed image, built (once) if missing or stale."""
        if self._cache is None:
            self._cache = ensure_cache(self.root / IMAGE_DIR, self.files, self.image_size, self.cache_dir,
                                       native_size=self.native_size, crop_box=self.crop_box,
                                       listed_in=ATTR_FILE, label="CelebA images", unreadable=self.unreadable)
            self._usable, self.skipped = leave_out_unreadable(self._cache, "celeba")
        return self._cache

    def split(self, name: str) -> CelebASplit:
        if name not in self.partitions:
            raise FaderkitError(f"CelebA has no split '{name}'; choose one of: {', '.join(self.split_names)}")
        if name not in self._splits:
            cache = self.ensure_cache()
            index = np.flatnonzero((self._partition == self.partitions[name]) & self._usable)
            labels = torch.from_numpy(self._labels[index].astype(np.int64))
            self._splits[name] = CelebASplit(name, labels, [self.files[i] for i in index], index, cache)
        return self._splits[name]

    def __repr__(self) -> str:
        return (f"CelebA({str(self.root)!r}, image_size={self.image_size}, "
                f"{len(self.files)} images, {len(self.attributes)} attributes)")


def _read(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FaderkitError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _tokens(data: bytes):
    """Whitespace-separated tokens of ``data``: (bytes as uint8, starts, ends, tokens per line)."""
    buf = np.frombuffer(data.rstrip(), dtype=np.uint8)
    if buf.size == 0:
        z = np.zeros(0, dtype=np.int64)
        return buf, z, z, z
    solid = (~_WS[buf]).view(np.uint8)
    change = np.empty(buf.size + 1, dtype=bool)
    change[0], change[-1] = solid[0], solid[-1]
    np.not_equal(solid[1:], solid[:-1], out=change[1:-1])
    edge = np.flatnonzero(change)
    starts, ends = edge[0::2], edge[1::2]  # each token is buf[start:end]
    is_start = np.zeros(buf.size, dtype=np.uint8)
    is_start[starts] = 1
    line_begin = np.concatenate([[0], np.flatnonzero(buf == 10) + 1])
    return buf, starts, ends, np.add.reduceat(is_start, line_begin, dtype=np.int64)


def _line_text(data: bytes, line: int) -> str:
    return data.rstrip().split(b"\n")[line].decode("utf-8", "replace").strip()


def _names(data: bytes, starts: np.ndarray, ends: np.ndarray) -> list[str]:
    if starts.size == 0:
        return []
    return b"\n".join([data[s:e] for s, e in zip(starts.tolist(), ends.tolist())]).decode(
        "utf-8", "surrogateescape").split("\n")


def parse_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """list_attr_celeba.txt -> (attribute names, file names, int8 (N, A) with 1 for '1' and 0 for '-1')."""
    raw = _read(path)
    head = raw.split(b"\n", 2)
    if len(head) < 2:
        raise FaderkitError(f"{path} is too short: line 1 should be the image count, line 2 the attribute names")
    try:
        count = int(head[0])
    except ValueError:
        raise FaderkitError(f"{path} line 1: expected the image count, found {head[0][:40].decode(errors='replace').strip()!r}") from None
    names = head[1].decode("utf-8", "replace").split()
    if not names:
        raise FaderkitError(f"{path} line 2: expected the attribute names, found an empty line")
    body = head[2] if len(head) > 2 else b""
    buf, starts, ends, per_line = _tokens(body)
    n, width = per_line.size, len(names) + 1
    bad = np.flatnonzero(per_line != width)
    if bad.size:
        i = int(bad[0])
        raise FaderkitError(f"{path} line {i + 3}: expected a file name and {len(names)} values, "
                            f"found {per_line[i] - 1 if per_line[i] else 'an empty line'}")
    if n != count:
        raise FaderkitError(f"{path}: line 1 says {count} images but {n} image lines follow")
    starts, ends = starts.reshape(n, width), ends.reshape(n, width)
    files = _names(body, starts[:, 0], ends[:, 0])
    vs, length = starts[:, 1:], ends[:, 1:] - starts[:, 1:]
    first = buf[vs]
    second = buf[np.minimum(vs + 1, buf.size - 1)]
    one = (length == 1) & (first == ord("1"))
    minus_one = (length == 2) & (first == ord("-")) & (second == ord("1"))
    invalid = ~(one | minus_one)
    if invalid.any():
        r, c = map(int, np.argwhere(invalid)[0])
        token = body[vs[r, c]:ends[r, c + 1]].decode("utf-8", "replace")
        raise FaderkitError(f"{path} line {r + 3}: {names[c]} is {token!r}; values must be 1 or -1")
    _no_duplicates(files, path, first_line=3)
    return names, files, one.astype(np.int8)


def parse_partition(path: Path) -> tuple[list[str], np.ndarray]:
    """list_eval_partition.txt -> (file names, int8 partition 0/1/2 per line)."""
    raw = _read(path)
    buf, starts, ends, per_line = _tokens(raw)
    n = per_line.size
    bad = np.flatnonzero(per_line != 2)
    if bad.size:
        i = int(bad[0])
        raise FaderkitError(f"{path} line {i + 1}: expected '<file name> <0, 1 or 2>', found {_line_text(raw, i)!r}")
    starts, ends = starts.reshape(n, 2), ends.reshape(n, 2)
    value = buf[starts[:, 1]] if n else np.zeros(0, dtype=np.uint8)
    invalid = ((ends[:, 1] - starts[:, 1]) != 1) | (value < ord("0")) | (value > ord("2"))
    if invalid.any():
        i = int(np.flatnonzero(invalid)[0])
        raise FaderkitError(f"{path} line {i + 1}: partition must be 0 (train), 1 (valid) or 2 (test), "
                            f"found {_line_text(raw, i)!r}")
    files = _names(raw, starts[:, 0], ends[:, 0])
    _no_duplicates(files, path, first_line=1)
    return files, (value - ord("0")).astype(np.int8)


def _no_duplicates(files: list[str], path: Path, first_line: int) -> None:
    if len(set(files)) == len(files):
        return
    seen: dict[str, int] = {}
    for i, f in enumerate(files):
        if f in seen:
            raise FaderkitError(f"{path} line {i + first_line}: {f} is listed twice (also line {seen[f] + first_line})")
        seen[f] = i


def _partition_of(files: list[str], path: Path, attr_path: Path) -> np.ndarray:
    """The partition of each file of the attribute list (the two lists may differ in order)."""
    pfiles, parts = parse_partition(path)
    if pfiles == files:
        return parts
    where = dict(zip(pfiles, parts.tolist()))
    out = np.empty(len(files), dtype=np.int8)
    for i, f in enumerate(files):
        p = where.get(f)
        if p is None:
            raise FaderkitError(f"{f} (line {i + 3} of {attr_path.name}) is missing from {path}")
        out[i] = p
    return out
