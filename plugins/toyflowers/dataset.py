"""ToyFlowers: the Oxford-102 loader pointed at generated flowers, plus ground-truth renders in other colours."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import torch
from PIL import Image
from pydantic import Field

from faderkit.errors import FaderkitError
from faderkit.imageio import crop_resize
from faderkit.synthetic import generate_on_first_use
from faderkit_plugins.oxford102.captions import DEFAULT_COLORS, DEFAULT_THRESHOLD
from faderkit_plugins.oxford102.dataset import Oxford102, Oxford102Params

from . import generate as _gen
from .render import COLORS, render


class ToyFlowersParams(Oxford102Params):
    count: int = Field(4000, ge=3, description="flowers to generate when root is missing or empty (at least 3: "
                       "one per split); an existing dataset is read as it is")
    seed: int = Field(0, ge=0, description="the generator's seed, with count; the same seed gives the same files")


class ToyFlowers(Oxford102):
    """Synthetic flowers in the Oxford-102 layout: generated under ``root`` on first use, then read like Oxford-102.

    Every Oxford-102 parameter applies (``colors``, ``threshold``, ``color_mode``, ...): the labels
    come from the generated captions by the same 5-of-10 rule. ``count`` and ``seed`` only matter
    when ``root`` does not exist (or is an empty folder); an existing dataset is read as it is.
    """

    dataset_name = "toyflowers"

    def __init__(self, root, image_size: int = 64, attributes=None, cache_dir=None, unreadable: str = "stop",
                 colors=DEFAULT_COLORS, threshold: int = DEFAULT_THRESHOLD, color_mode: str = "binary",
                 count: int = 4000, seed: int = 0):
        root = generate_on_first_use(root, "toyflowers: synthetic flowers", _gen.generate, count, seed,
                                     "toyflowers.json")
        super().__init__(root, image_size=image_size, attributes=attributes, cache_dir=cache_dir, colors=colors,
                         threshold=threshold, color_mode=color_mode, unreadable=unreadable)
        self._toy_seed: int | None = None

    @classmethod
    def generate(cls, out_dir: Path, count: int, seed: int = 0) -> None:
        _gen.generate(out_dir, count, seed=seed)

    def _seed(self) -> int:
        if self._toy_seed is None:
            meta_path = Path(self.root) / "toyflowers.json"
            try:
                meta = json.loads(meta_path.read_text())
                self._toy_seed = int(meta["seed"])
            except (OSError, ValueError, KeyError, TypeError):
                raise FaderkitError(f"{meta_path} is missing or unreadable: {self.root} was not written by the "
                                    "toyflowers generator, so its flowers cannot be re-rendered") from None
            if meta.get("version") != _gen.GENERATOR_VERSION:
                raise FaderkitError(f"{self.root} was made by toyflowers generator version {meta.get('version')}, "
                                    f"this is version {_gen.GENERATOR_VERSION}; regenerate it to render flowers")
        return self._toy_seed

    def true_color(self, split_name: str, index: int) -> str:
        """The colour the generator painted row ``index`` of the split (whatever its captions say)."""
        return _gen.flower(self._seed(), self._id(split_name, index))[1]

    def _id(self, split_name: str, index: int) -> int:
        ids = self.split(split_name).ids
        if not -len(ids) <= int(index) < len(ids):
            raise FaderkitError(f"index {index} is out of range for the {split_name} split ({len(ids)} images)")
        return int(ids[int(index)])

    def render(self, split_name: str, index: int, values: Mapping[str, str | float]) -> torch.Tensor:
        """uint8 (3, S, S): row ``index`` of the split, redrawn with another petal colour.

        ``values`` is ``{"color": "yellow"}`` (either mode), or in binary mode ``{"yellow": 1}``
        (one colour set to 1 picks it); ``{}`` redraws the flower as it is. The result is cropped
        and resized exactly like the loader's images; it skips the JPEG round trip the stored
        images went through, so it differs from them by compression noise only.
        """
        identity, color, _ = _gen.flower(self._seed(), self._id(split_name, index))
        chosen = []
        for key, value in values.items():
            if key == "color":
                if value not in COLORS:
                    raise FaderkitError(f"toyflowers has no colour {value!r}; choose from: {', '.join(COLORS)}")
                chosen.append(value)
            elif key in COLORS:
                if float(value) >= 0.5:
                    chosen.append(key)
                elif key == color and not any(k == "color" or (k in COLORS and float(v) >= 0.5)
                                              for k, v in values.items()):
                    raise FaderkitError(f"{key}=0 leaves the flower without a colour; set another colour to 1")
            else:
                raise FaderkitError(f"toyflowers has no attribute '{key}'; use color or one of: {', '.join(COLORS)}")
        if len(set(chosen)) > 1:
            raise FaderkitError(f"a flower has one petal colour; asked for {', '.join(sorted(set(chosen)))}")
        img = Image.fromarray(render(identity, chosen[0] if chosen else color))
        arr = crop_resize(img, self.image_size)
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())
