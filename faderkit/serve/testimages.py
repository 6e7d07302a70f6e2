"""The test split of the checkpoint's own dataset, offered in the page when its data is present.

Opened in a background thread, so the server answers at once even when the dataset's image cache
must first be built (as ``train`` and ``eval`` would build it); until then the page says so.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import torch

from ..data import open_dataset, split_with_images
from ..errors import FaderkitError


class TestImages:
    """``state``: "loading", "ready" or "absent" (``reason`` says why); images by index once ready."""

    __test__ = False  # not a pytest class

    def __init__(self, recipe, attributes, data_root: str | Path | None = None, log=lambda m: None):
        self.recipe, self.attributes, self.log = recipe, tuple(attributes), log
        self.root = Path(data_root if data_root is not None else recipe.data.root).expanduser()
        self.state, self.reason, self.split = "loading", None, None
        self._thread: threading.Thread | None = None

    def start(self) -> "TestImages":
        if self._thread is not None:
            return self
        self._thread = threading.Thread(target=self._open, name="faderkit-test-images", daemon=True)
        self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state

    def _open(self) -> None:
        try:
            self.split = self._open_split()
            self.state = "ready"
            self.log(f"test images: {len(self.split)} from {self.root}")
        except FaderkitError as exc:
            self.state, self.reason = "absent", str(exc)
            self.log(f"test images: none ({exc})")
        except Exception as exc:  # a dataset plugin's bug must not take the server down
            self.state, self.reason = "absent", f"the dataset could not be opened ({type(exc).__name__}: {exc})"
            self.log(f"test images: none ({self.reason})")

    def _open_split(self):
        # never generate a synthetic dataset here, or read an empty folder as one
        if not self.root.is_dir() or not any(self.root.iterdir()):
            raise FaderkitError(f"no dataset at {self.root} (give its folder with --data-root)")
        recipe = self.recipe.model_copy(deep=True)
        recipe.data.root = self.root
        dataset = open_dataset(recipe)
        names = [a.name for a in dataset.attributes]
        if names != [a.name for a in self.attributes]:
            raise FaderkitError(f"the dataset at {self.root} has attributes {names}, the checkpoint "
                                f"{[a.name for a in self.attributes]}")
        name = "test" if "test" in dataset.split_names else dataset.split_names[-1]
        return split_with_images(dataset, name)

    def status(self, offset: int = 0, limit: int = 12) -> dict:
        out = {"state": self.state, "reason": self.reason, "count": 0, "items": []}
        if self.state == "ready":
            n = len(self.split)
            out["count"] = n
            out["items"] = [{"index": i, "label": self.label(i)} for i in range(max(0, offset), min(n, offset + limit))]
        return out

    def label(self, index: int) -> str:
        """What the dataset says the image shows, for its alt text: 'test image 3: Smiling, Male'."""
        row = self.split.labels[index].tolist()
        parts = [a.name if a.binary else f"{a.name} {a.values[v]}" for a, v in zip(self.attributes, row)
                 if not (a.binary and v == 0)]
        return f"test image {index}: " + (", ".join(parts) if parts else "no attribute present")

    def image(self, index: int) -> torch.Tensor:
        """uint8 (1, 3, S, S), already cropped and resized like the training data."""
        if self.state != "ready":
            raise LookupError(f"no test images ({self.reason or 'still loading'})")
        if not 0 <= index < len(self.split):
            raise LookupError(f"no test image {index}; there are {len(self.split)} (0 to {len(self.split) - 1})")
        return self.split.images(np.array([index]))
