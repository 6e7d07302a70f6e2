"""Stripes: a deliberately tiny AttributeDataset, to show what a dataset plugin must provide.

Image ``i`` of a dataset made with ``seed`` depends only on ``(seed, i)``: random colours, stripe
phase and a little noise (its identity), plus two binary attributes, ``Vertical`` (stripe
direction) and ``Thick`` (stripe width). On disk there is only ``stripes.json`` (count and seed);
images are drawn in memory when asked for, so the dataset costs nothing to generate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from pydantic import Field

from faderkit import Params
from faderkit.errors import FaderkitError
from faderkit.interfaces import Attribute, AttributeDataset, Split

ATTRIBUTES = ("Vertical", "Thick")
META = "stripes.json"


def draw(seed: int, i: int, size: int) -> tuple[np.ndarray, list[int]]:
    """uint8 (3, size, size) and the attribute values [Vertical, Thick] of image ``i``."""
    rng = np.random.default_rng([seed, i])
    vertical, thick = int(rng.random() < 0.5), int(rng.random() < 0.5)
    bg, fg = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    period = size / (3 if thick else 6)
    coord = np.arange(size)[None, :] if vertical else np.arange(size)[:, None]
    on = ((coord + rng.uniform(0, period)) % period) < period / 2  # (1, S) or (S, 1)
    on = np.broadcast_to(on, (size, size))
    img = np.where(on[None], fg[:, None, None], bg[:, None, None]).astype(np.float32)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), [vertical, thick]


class StripesSplit(Split):
    def __init__(self, name: str, numbers: np.ndarray, labels: torch.Tensor, seed: int, size: int):
        self.name, self.numbers, self.labels, self.seed, self.size = name, numbers, labels, seed, size

    def images(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 (len(indices), 3, S, S), in the order asked."""
        return torch.from_numpy(np.stack([draw(self.seed, int(self.numbers[k]), self.size)[0]
                                          for k in np.asarray(indices, dtype=np.int64)]))


class StripesParams(Params):
    """The recipe's ``data.params`` for stripes. faderkit checks them against this model when it loads
    the recipe (a misspelled key, a wrong type or a count below 3 is a recipe error naming the key),
    records them with their defaults in the run's recipe, and lists them in
    ``faderkit plugins --params stripes``. Every field needs a description."""

    count: int = Field(200, ge=3, description="images to draw when root holds no stripes.json (one per split at least)")
    seed: int = Field(0, ge=0, description="the seed the images are drawn from, with count")


class Stripes(AttributeDataset):
    """``Stripes(root, image_size=32, attributes=None, count=200, seed=0)``; generated under ``root`` on first use."""

    def __init__(self, root, image_size: int = 32, attributes: Sequence[str] | None = None,
                 count: int = 200, seed: int = 0):
        self.root, self.image_size = Path(root), int(image_size)
        if not (self.root / META).is_file():
            self.generate(self.root, count, seed)
        try:
            meta = json.loads((self.root / META).read_text())
            self.count, self.seed = int(meta["count"]), int(meta["seed"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FaderkitError(f"{self.root / META} is unreadable: {exc}") from None
        wanted = list(attributes) if attributes is not None else list(ATTRIBUTES)
        unknown_attrs = [a for a in wanted if a not in ATTRIBUTES]
        if unknown_attrs:
            raise FaderkitError(f"stripes has no attribute {unknown_attrs[0]!r}; choose from: {', '.join(ATTRIBUTES)}")
        self.attributes = tuple(Attribute(a) for a in wanted)
        self._columns = [ATTRIBUTES.index(a) for a in wanted]
        self._splits: dict[str, StripesSplit] = {}

    @classmethod
    def generate(cls, out_dir: Path, count: int, seed: int = 0) -> None:
        """All there is to write: the count and the seed (images are drawn from them on demand)."""
        if int(count) < 3:
            raise FaderkitError(f"stripes count must be at least 3 (one image per split), got {count}")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / META).write_text(json.dumps({"count": int(count), "seed": int(seed)}) + "\n")

    def split(self, name: str) -> StripesSplit:
        if name not in self.split_names:
            raise FaderkitError(f"stripes has no split '{name}'; choose one of: {', '.join(self.split_names)}")
        if name not in self._splits:
            n_eval = max(1, self.count // 10)  # train: the first 80%, then valid and test 10% each
            bounds = {"train": (0, self.count - 2 * n_eval), "valid": (self.count - 2 * n_eval, self.count - n_eval),
                      "test": (self.count - n_eval, self.count)}[name]
            numbers = np.arange(*bounds) + 1
            labels = torch.tensor([[draw(self.seed, int(i), 4)[1][c] for c in self._columns] for i in numbers],
                                  dtype=torch.int64).reshape(len(numbers), len(self._columns))
            self._splits[name] = StripesSplit(name, numbers, labels, self.seed, self.image_size)
        return self._splits[name]
