"""Oxford-102 flowers as distributed, with colour attributes read from the Reed et al. captions.

Layout under ``root`` (exactly what the downloads unpack to)::

    jpg/image_00001.jpg ... image_08189.jpg      photos of varying size
    imagelabels.mat                              labels: 1 x N, the class (1..102) of image i at i-1
    setid.mat                                    trnid, valid, tstid: 1-based image ids per split
    text_c10/class_00001/image_06734.txt         ten captions, one per line

Attributes come from the captions (see :mod:`.captions`): a colour is set when its word appears
in at least ``threshold`` of the image's ten captions. Two modes (``color_mode``):

- ``binary``: one binary attribute per colour of ``colors`` (an image may have several, or none).
- ``categorical``: one attribute ``color`` whose values are ``colors``. An image whose captions
  qualify several colours gets the one named in the most captions (a tie goes to the colour listed
  first in ``colors``); an image with no qualifying colour is skipped.

Images without a caption file are skipped in both modes. Every skip is counted, and one line on
stderr says how many were skipped and why. Images are centre-cropped to a square and resized
(deterministically), then cached once in a uint8 memory-mapped file (the CelebA plugin's cache).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Literal, Sequence

import numpy as np
import torch
from pydantic import AfterValidator, Field, field_validator, model_validator

from faderkit.errors import FaderkitError
from faderkit.interfaces import Attribute, AttributeDataset, select_attributes
from faderkit_plugins.celeba.cache import ImageCache, ImageCacheParams, ensure_cache, leave_out_unreadable
from faderkit_plugins.celeba.dataset import CelebASplit

from .captions import (CAPTIONS_PER_IMAGE, DEFAULT_COLORS, DEFAULT_THRESHOLD, categorical_label, mentions,
                       plain_word, read_captions)

IMAGE_DIR = "jpg"
LABELS_FILE = "imagelabels.mat"
SETID_FILE = "setid.mat"
CAPTION_DIR = "text_c10"
#: split name -> its variable in setid.mat
SPLIT_VARS = {"train": "trnid", "valid": "valid", "test": "tstid"}


def image_name(i: int) -> str:
    return f"image_{int(i):05d}.jpg"


def caption_path(root: Path, label: int, i: int) -> Path:
    return Path(root) / CAPTION_DIR / f"class_{int(label):05d}" / f"image_{int(i):05d}.txt"


#: Runs scipy's loadmat in a child process and saves the numeric variables as .npz (others as their dtype's name).
_LOADMAT = """import sys, numpy as np, scipy.io
mat = scipy.io.loadmat(sys.argv[1])
np.savez(sys.argv[2], **{k: (v if np.asarray(v).dtype.kind in "iufb" else np.array(str(np.asarray(v).dtype)))
                         for k, v in mat.items() if not k.startswith("__")})
"""


def _loadmat(path: Path) -> dict[str, np.ndarray]:
    """scipy's loadmat, in a child process: fuzzing found a damaged .mat file that crashes scipy's
    parser (a segfault), and a crash must be one error line, not the end of faderkit."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "mat.npz"
        done = subprocess.run([sys.executable, "-c", _LOADMAT, str(path), str(out)], capture_output=True, text=True)
        if done.returncode != 0:
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            reason = lines[-1] if done.returncode > 0 and lines else "its parser crashed (a damaged file)"
            raise ValueError(reason)
        with np.load(out, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}


def read_mat(path: Path, variables: Sequence[str]) -> dict[str, np.ndarray]:
    """The named variables of a MATLAB file as 1-D int64 arrays; a missing one is an error naming the file."""
    if not Path(path).is_file():
        raise FaderkitError(f"{path} does not exist")
    try:
        mat = _loadmat(Path(path))
    except Exception as exc:  # scipy's parser on a damaged file: MatReadError, ValueError, IndexError (truncated), ...
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise FaderkitError(f"cannot read {path} as a MATLAB file: {reason}") from None
    found = sorted(k for k in mat if not k.startswith("__"))
    out = {}
    for v in variables:
        if v not in mat:
            raise FaderkitError(f"{path} has no variable '{v}' (it holds: {', '.join(found) or 'nothing'})")
        arr = np.asarray(mat[v])
        if arr.dtype.kind not in "iuf" or arr.size == 0:
            raise FaderkitError(f"{path}: variable '{v}' should be a non-empty row of integers, got {arr.dtype} {arr.shape}")
        flat = arr.ravel()
        if flat.dtype.kind == "f" and not np.array_equal(flat, np.round(flat)):
            raise FaderkitError(f"{path}: variable '{v}' holds non-integer values")
        out[v] = flat.astype(np.int64)
    return out


class Oxford102Split(CelebASplit):
    """One split (in setid.mat order, skipped images left out): labels in memory, images from the cache."""

    def __init__(self, name, labels, ids: np.ndarray, cache_index, cache):
        super().__init__(name, labels, [image_name(i) for i in ids], cache_index, cache)
        self.ids = ids

    def __repr__(self) -> str:
        return f"Oxford102Split({self.name!r}, {len(self)} images, {self.labels.shape[1]} attributes)"


class Oxford102Params(ImageCacheParams):
    colors: list[Annotated[str, AfterValidator(plain_word)]] = Field(
        list(DEFAULT_COLORS), min_length=1, strict=False,
        description="the colour vocabulary, plain words (a list, or one text with commas)")
    threshold: int = Field(DEFAULT_THRESHOLD, ge=1, le=CAPTIONS_PER_IMAGE,
                           description="a colour is set when at least this many of an image's 10 captions name it")
    color_mode: Literal["binary", "categorical"] = Field(
        "binary", description="binary: one attribute per colour; categorical: one attribute 'color', "
        "the colour named most (images with none are skipped)")

    @field_validator("colors", mode="before")
    @classmethod
    def _comma_separated(cls, colors):
        return [c.strip() for c in colors.split(",")] if isinstance(colors, str) else colors

    @field_validator("colors")
    @classmethod
    def _each_once(cls, colors: list[str]) -> list[str]:
        twice = next((c for i, c in enumerate(colors) if c in colors[:i]), None)
        if twice:
            raise ValueError(f"colour '{twice}' is listed twice")
        return colors

    @model_validator(mode="after")
    def _categories_need_two(self):
        if self.color_mode == "categorical" and len(self.colors) < 2:
            raise ValueError(f"categorical color_mode needs at least 2 colors, got {self.colors}")
        return self


class Oxford102(AttributeDataset):
    """Oxford-102 flowers with caption-derived colour attributes; see the module docstring."""

    #: The name used in messages (a subclass, e.g. toy flowers, says its own).
    dataset_name = "oxford102"

    def __init__(self, root, image_size: int = 64, attributes: Sequence[str] | None = None, cache_dir=None,
                 colors: Sequence[str] = DEFAULT_COLORS, threshold: int = DEFAULT_THRESHOLD,
                 color_mode: str = "binary", unreadable: str = "stop"):
        """The keywords after ``attributes`` come from the recipe's ``data.params``, checked by faderkit
        against :class:`Oxford102Params`."""
        name = self.dataset_name
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise FaderkitError(f"{name}: image_size must be a positive integer, got {image_size!r}")
        self.unreadable, self.colors, self.threshold, self.color_mode = unreadable, tuple(colors), threshold, color_mode
        self.image_size = int(image_size)
        self.root = Path(root).expanduser()
        self._check_layout()

        class_of = read_mat(self.root / LABELS_FILE, ["labels"])["labels"]
        setid = read_mat(self.root / SETID_FILE, list(SPLIT_VARS.values()))
        self._split_ids = {split: setid[var] for split, var in SPLIT_VARS.items()}
        self._check_ids(class_of)

        # The cache holds every listed image (in id order), whatever the colour settings.
        self.ids = np.unique(np.concatenate(list(self._split_ids.values())))
        self.files = [image_name(i) for i in self.ids]
        self.class_of = {int(i): int(class_of[i - 1]) for i in self.ids}

        self.attributes, self._labels = self._read_labels(attributes)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.root / ".faderkit-cache"
        self._cache: ImageCache | None = None
        self._splits: dict[str, Oxford102Split] = {}

    # -- reading
    def _check_layout(self) -> None:
        name = self.dataset_name
        if not self.root.is_dir():
            raise FaderkitError(f"{name} root {self.root} does not exist or is not a folder")
        parts = ((f"{IMAGE_DIR}/", self.root / IMAGE_DIR, Path.is_dir), (LABELS_FILE, self.root / LABELS_FILE, Path.is_file),
                 (SETID_FILE, self.root / SETID_FILE, Path.is_file), (f"{CAPTION_DIR}/", self.root / CAPTION_DIR, Path.is_dir))
        missing = [label for label, path, ok in parts if not ok(path)]
        if missing:
            raise FaderkitError(f"{name} root {self.root} lacks {', '.join(missing)} (expected {IMAGE_DIR}/, "
                                f"{LABELS_FILE}, {SETID_FILE} and the captions in {CAPTION_DIR}/)")

    def _check_ids(self, class_of: np.ndarray) -> None:
        setid, labels = self.root / SETID_FILE, self.root / LABELS_FILE
        seen: dict[int, str] = {}
        try:
            present = set(os.listdir(self.root / IMAGE_DIR))
        except OSError as exc:
            raise FaderkitError(f"cannot list {self.root / IMAGE_DIR}: {exc.strerror or exc}") from None
        for split, ids in self._split_ids.items():
            var = SPLIT_VARS[split]
            for i in ids.tolist():
                if not 1 <= i <= class_of.size:
                    raise FaderkitError(f"{setid}: {var} lists image id {i}, but {labels} labels only "
                                        f"{class_of.size} images (ids 1..{class_of.size})")
                if i in seen:
                    raise FaderkitError(f"{setid}: image id {i} is listed in both {seen[i]} and {var}")
                seen[i] = var
                if image_name(i) not in present:
                    raise FaderkitError(f"{setid}: {var} lists image id {i}, but {self.root / IMAGE_DIR / image_name(i)} "
                                        "does not exist")

    def _read_labels(self, wanted) -> tuple[tuple[Attribute, ...], np.ndarray]:
        """Count colour mentions per listed image; returns the attributes and int64 labels (-1 = skipped)."""
        counts = np.zeros((len(self.ids), len(self.colors)), dtype=np.int64)
        captioned = np.zeros(len(self.ids), dtype=bool)
        for row, i in enumerate(self.ids.tolist()):
            path = caption_path(self.root, self.class_of[i], i)
            if not path.is_file():
                continue
            counts[row] = mentions(read_captions(path), self.colors)
            captioned[row] = True
        self.mention_counts = counts
        keep = captioned.copy()
        no_colour = 0
        if self.color_mode == "categorical":
            attrs = (Attribute("color", self.colors),)
            select_attributes(wanted, ["color"], self.dataset_name, hint="categorical color_mode has the one attribute 'color'")
            cat = np.array([categorical_label(c, self.threshold) for c in counts], dtype=np.int64)
            no_colour = int((captioned & (cat < 0)).sum())
            keep &= cat >= 0
            labels = cat[:, None]
        else:
            cols = select_attributes(wanted, list(self.colors), self.dataset_name,
                                     hint="binary color_mode has one attribute per colour of the colors param")
            attrs = tuple(Attribute(self.colors[c]) for c in cols)
            labels = (counts[:, cols] >= self.threshold).astype(np.int64)
        labels = np.where(keep[:, None], labels, -1)
        self.skipped = {"no_captions": int((~captioned).sum()), "no_colour": no_colour, "unreadable": 0}
        self.skipped_ids = {"no_captions": self.ids[~captioned].tolist(),
                            "no_colour": self.ids[captioned & ~keep].tolist()}
        if any(self.skipped.values()):
            print(self._report(), file=sys.stderr, flush=True)
        return attrs, labels

    def _report(self) -> str:
        s = self.skipped
        parts = []
        if s["no_captions"]:
            parts.append(f"{s['no_captions']} without a caption file in {CAPTION_DIR}/")
        if s["no_colour"]:
            parts.append(f"{s['no_colour']} whose captions name no colour of {','.join(self.colors)} "
                         f"at least {self.threshold} times")
        if s["unreadable"]:
            parts.append(f"{s['unreadable']} that cannot be read")
        used = len(self.ids) - sum(s.values())
        return f"{self.dataset_name}: using {used} of {len(self.ids)} images; skipped " + " and ".join(parts)

    # -- the interface
    def ensure_cache(self) -> ImageCache:
        """Every listed image, centre-cropped and resized, cached once (rebuilt if missing or stale)."""
        if self._cache is None:
            self._cache = ensure_cache(self.root / IMAGE_DIR, self.files, self.image_size, self.cache_dir,
                                       native_size=None, crop_box=None, listed_in=SETID_FILE,
                                       label=f"{self.dataset_name} images", unreadable=self.unreadable)
            readable, _ = leave_out_unreadable(self._cache, self.dataset_name)
            newly = ~readable & (self._labels[:, 0] >= 0)  # not already skipped (and counted) for their captions
            self._labels[newly] = -1
            self.skipped["unreadable"] = int(newly.sum())
        return self._cache

    def split(self, name: str) -> Oxford102Split:
        if name not in SPLIT_VARS:
            raise FaderkitError(f"{self.dataset_name} has no split '{name}'; choose one of: {', '.join(self.split_names)}")
        if name not in self._splits:
            self.ensure_cache()  # leaves out unreadable images first (data.params.unreadable: skip)
            ids = self._split_ids[name]
            rows = np.searchsorted(self.ids, ids)
            rows = rows[self._labels[rows, 0] >= 0]  # skipped images have label -1
            if rows.size == 0:
                raise FaderkitError(f"{self.dataset_name}: the {name} split ({SPLIT_VARS[name]} in {SETID_FILE}) "
                                    f"has no images left after skipping: {self._report()}")
            labels = torch.from_numpy(np.ascontiguousarray(self._labels[rows]))
            self._splits[name] = Oxford102Split(name, labels, self.ids[rows], rows, self._cache)
        return self._splits[name]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.root)!r}, image_size={self.image_size}, "
                f"{len(self.ids)} images, color_mode={self.color_mode!r}, colors={list(self.colors)})")


