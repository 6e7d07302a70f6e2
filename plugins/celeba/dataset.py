"""CelebA as people download it: the original release, the Kaggle copy or torchvision's folder.

:mod:`.layouts` finds the files, :mod:`.lists` reads them (txt or csv, every error naming the file
and line), :mod:`.landmarks` gives the alignment template. Images come from a memory-mapped cache
built on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from faderkit.errors import FaderkitError
from faderkit.interfaces import Attribute, AttributeDataset, Split, select_attributes

from .cache import ImageCache, ensure_cache, leave_out_unreadable
from .landmarks import PUBLISHED, template_from
from .layouts import Layout, find_layout
from .lists import partition_of, read_attributes


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
    def __init__(self, root, image_size: int = 64, attributes: Sequence[str] | None = None,
                 cache_dir=None, unreadable: str = "stop"):
        """``cache_dir`` and ``unreadable`` come from the recipe's ``data.params``, checked by faderkit
        against :class:`~.cache.ImageCacheParams`."""
        self.unreadable = unreadable
        if isinstance(image_size, bool) or not isinstance(image_size, (int, np.integer)) or image_size < 1:
            raise FaderkitError(f"celeba: image_size must be a positive integer, got {image_size!r}")
        self.root = Path(root).expanduser()
        self.image_size = int(image_size)
        self.layout: Layout = find_layout(self.root)
        attr_path = self.layout.attributes
        names, files, values = read_attributes(attr_path)
        columns = select_attributes(attributes, names, "celeba", source=str(attr_path))
        self.attributes = tuple(Attribute(names[c]) for c in columns)
        self.files: list[str] = files
        self._labels = values[:, columns]
        self._partition = partition_of(files, self.layout.partition, attr_path)
        self._template: tuple[dict, str] | None = None
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else self.layout.folder / ".faderkit-cache"
        self._cache: ImageCache | None = None
        self._splits: dict[str, CelebASplit] = {}
        self._usable = np.ones(len(files), dtype=bool)
        self.skipped = {"unreadable": 0}

    def ensure_cache(self) -> ImageCache:
        """The image cache of every listed image, built (once) if missing or stale."""
        if self._cache is None:
            self._cache = ensure_cache(self.layout.images, self.files, self.image_size, self.cache_dir,
                                       native_size=self.native_size, crop_box=self.crop_box,
                                       listed_in=self.layout.attributes.name, label="CelebA images",
                                       unreadable=self.unreadable)
            self._usable, self.skipped = leave_out_unreadable(self._cache, "celeba")
        return self._cache

    def landmark_template(self) -> dict[str, tuple[float, float]]:
        """Mean (x, y) of the five landmarks in the native 178 x 218 frame: from the copy's aligned-landmark
        file when it has one, else the published means (:attr:`landmark_source` says which)."""
        if self._template is None:
            self._template = template_from(self.layout.landmarks)
        return dict(self._template[0])

    @property
    def landmark_source(self) -> str:
        """The landmark file the template was read from, or "published means" when the copy has none."""
        return str(self.layout.landmarks) if self.layout.landmarks else PUBLISHED

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
        marks = self.layout.landmarks.name if self.layout.landmarks else PUBLISHED
        return (f"CelebA({str(self.layout.folder)!r}, {self.layout.name} layout, image_size={self.image_size}, "
                f"{len(self.files)} images, {len(self.attributes)} attribute{'s' * (len(self.attributes) != 1)}, "
                f"landmarks: {marks})")
