"""ToyFaces: the CelebA loader pointed at generated faces, plus ground-truth counterfactual renders."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import torch
from PIL import Image
from pydantic import Field

from faderkit.errors import FaderkitError
from faderkit.imageio import crop_resize
from faderkit.synthetic import generate_on_first_use
from faderkit_plugins.celeba.cache import ImageCacheParams
from faderkit_plugins.celeba.dataset import CelebA

from . import generate as _gen
from .layouts import LAYOUTS
from .render import ATTRIBUTES, landmarks, render

#: How many of the generator's faces :func:`mean_landmarks` averages.
TEMPLATE_FACES = 500


@lru_cache(maxsize=1)
def mean_landmarks() -> dict[str, tuple[float, float]]:
    """The eyes' mean native-frame positions over the generator's faces (seed 0), which is where
    the toy faces locator's two landmarks sit in an average training image."""
    pts = [landmarks(_gen.identity_and_attributes(0, i)[0]) for i in range(1, TEMPLATE_FACES + 1)]
    # the renderer's coordinates put a pixel's centre at +0.5; faderkit's (a Face's) at its whole number
    return {name: tuple(round(sum(p[name][k] for p in pts) / len(pts) - 0.5, 2) for k in (0, 1))
            for name in ("left_eye", "right_eye")}


class ToyFacesParams(ImageCacheParams):
    count: int = Field(10000, ge=10, description="faces to generate when root is missing or empty (at least 10: "
                       "the 80/10/10 split needs a valid and a test face); an existing dataset is read as it is")
    seed: int = Field(0, ge=0, description="the generator's seed, with count; the same seed gives the same files")


class ToyFaces(CelebA):
    """Synthetic faces in the CelebA layout: generated under ``root`` on first use, then read like CelebA.

    ``count`` and ``seed`` only matter when ``root`` does not exist (or is an empty folder); an
    existing dataset is always read as it is and never overwritten.
    """

    def __init__(self, root, image_size: int = 64, attributes=None, cache_dir=None, unreadable: str = "stop",
                 count: int = 10000, seed: int = 0):
        root = generate_on_first_use(root, "toyfaces: synthetic faces", _gen.generate, count, seed, "toyfaces.json")
        super().__init__(root, image_size=image_size, attributes=attributes, cache_dir=cache_dir, unreadable=unreadable)
        self._toy_size = int(image_size)
        self._toy_seed: int | None = None

    face_locator = "toyfaces"
    landmark_source = f"the toyfaces generator: mean eye positions of {TEMPLATE_FACES} faces (seed 0)"

    def landmark_template(self) -> dict[str, tuple[float, float]]:
        return mean_landmarks()

    def __repr__(self) -> str:
        return f"ToyFaces({str(self.root)!r}, image_size={self._toy_size}, {len(self.files)} images)"

    #: The on-disk layouts :meth:`generate` can write (``faderkit data toyfaces OUT --layout NAME``).
    layouts = LAYOUTS

    @classmethod
    def generate(cls, out_dir: Path, count: int, seed: int = 0, layout: str = "original") -> None:
        _gen.generate(out_dir, count, seed=seed, layout=layout)

    def _seed(self) -> int:
        if self._toy_seed is None:
            meta_path = self.layout.folder / "toyfaces.json"
            try:
                meta = json.loads(meta_path.read_text())
                self._toy_seed = int(meta["seed"])
            except (OSError, ValueError, KeyError, TypeError):
                raise FaderkitError(
                    f"{meta_path} is missing or unreadable: {self.root} was not written by the toyfaces generator, "
                    "so its faces cannot be re-rendered"
                ) from None
            if meta.get("version") != _gen.GENERATOR_VERSION:
                raise FaderkitError(
                    f"{self.root} was made by toyfaces generator version {meta.get('version')}, this is version "
                    f"{_gen.GENERATOR_VERSION}; regenerate it to render counterfactuals"
                )
        return self._toy_seed

    def render(self, split_name: str, index: int, values: Mapping[str, float]) -> torch.Tensor:
        """uint8 (3, S, S): row ``index`` of the split, redrawn with ``values`` (attribute -> [0, 1]).

        Attributes not in ``values`` keep the image's own labels; the result is cropped and resized
        exactly like the loader's images. It skips the JPEG round trip the stored images went
        through, so it differs from them by compression noise only.
        """
        unknown = [k for k in values if k not in ATTRIBUTES]
        if unknown:
            raise FaderkitError(f"toyfaces has no attribute '{unknown[0]}'; choose from: {', '.join(ATTRIBUTES)}")
        files = self.split(split_name).files
        if not -len(files) <= int(index) < len(files):
            raise FaderkitError(f"index {index} is out of range for the {split_name} split ({len(files)} images)")
        number = int(Path(files[int(index)]).stem)
        identity, own = _gen.identity_and_attributes(self._seed(), number)
        merged = {**{k: float(v) for k, v in own.items()}, **{k: float(v) for k, v in values.items()}}
        img = Image.fromarray(render(identity, merged))
        arr = crop_resize(img, self._toy_size, self.native_size, self.crop_box)
        return torch.from_numpy(arr.transpose(2, 0, 1).copy())
