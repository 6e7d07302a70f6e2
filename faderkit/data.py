"""Feeding the model: deterministic batches of uint8 images, augmented on the whole batch."""

from __future__ import annotations

import numpy as np
import torch

from .errors import FaderkitError
from .imageio import to_unit
from .interfaces import AttributeDataset, Split
from .plugins import registries


def open_dataset(recipe) -> AttributeDataset:
    """The dataset a recipe names, built through the registry with its root, size, attributes and params."""
    d = recipe.data
    return registries().datasets.create(d.name, d.root, image_size=d.image_size, attributes=d.attributes,
                                        params=d.params)


def split_with_images(dataset: AttributeDataset, name: str, needed_for: str = "") -> Split:
    """``dataset.split(name)``; an unknown split or one without images is a one-line error (``needed_for``
    says why images are needed there)."""
    if name not in dataset.split_names:
        raise FaderkitError(f"the dataset at {dataset.root} has no split '{name}'; choose one of: "
                            f"{', '.join(dataset.split_names)}")
    split = dataset.split(name)
    if len(split) == 0:
        raise FaderkitError(f"the {name} split of {dataset.root} has no images" + (f"; {needed_for}" if needed_for else ""))
    return split


class BatchStream:
    """Batch ``b`` is a pure function of (seed, b): a resumed run sees exactly the batches it would have.

    Each epoch is a fresh permutation of the split; ``rank``/``world`` give each distributed
    process its own disjoint share of every global batch.
    """

    def __init__(self, split: Split, batch_size: int, seed: int = 0, rank: int = 0, world: int = 1):
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.rank, self.world = rank, world
        self.n = len(split)
        if self.n == 0:
            raise ValueError(f"split '{split.name}' is empty")
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) > 2:
                self._perms.clear()
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perms[epoch]

    def indices(self, b: int) -> np.ndarray:
        start = (b * self.world + self.rank) * self.batch_size
        pos = np.arange(start, start + self.batch_size)
        epochs, within = np.divmod(pos, self.n)
        return np.array([self._perm(int(e))[j] for e, j in zip(epochs, within)])

    def batch(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images (B, 3, S, S), int64 labels (B, A)) for batch number ``b``."""
        idx = self.indices(b)
        return self.split.images(idx), self.split.labels[torch.from_numpy(idx)]


def prepare_batch(images: torch.Tensor, device: torch.device, flip: bool, generator: torch.Generator | None = None,
                  channels_last: bool = False) -> torch.Tensor:
    """uint8 -> float [-1, 1] on the device, with random horizontal flips (p = 0.5) when ``flip``."""
    x = to_unit(images.to(device, non_blocking=True))
    if flip:
        mask = torch.rand(x.shape[0], generator=generator) < 0.5
        if mask.any():
            x[mask.to(device)] = x[mask.to(device)].flip(-1)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
