"""The abstract pieces a plugin supplies: attribute datasets, the networks and face locators.

Tensors crossing these interfaces: images are float in [-1, 1], shape (B, 3, S, S) for the
networks, uint8 (B, 3, S, S) from datasets; labels are int64 (B, A), one value index per
attribute; the attribute *code* is float (B, sum of value counts): one one-hot block per attribute.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .errors import FaderkitError


@dataclass(frozen=True)
class Attribute:
    """An attribute and its possible values; two values (absent, present) make it binary."""

    name: str
    values: tuple[str, ...] = ("0", "1")

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def binary(self) -> bool:
        return len(self.values) == 2

    def to_json(self) -> dict:
        return {"name": self.name, "values": list(self.values)}

    @classmethod
    def from_json(cls, d: dict) -> "Attribute":
        return cls(d["name"], tuple(d["values"]))


@dataclass(frozen=True)
class ArchSpec:
    """What every network factory is told: image size, attributes and the shared widths."""

    image_size: int
    attributes: tuple[Attribute, ...]
    n_layers: int
    init_fm: int
    max_fm: int
    #: (C, H, W) of the latent; filled in by the core once the encoder is built.
    latent_shape: tuple[int, int, int] | None = None

    @property
    def code_dim(self) -> int:
        return sum(a.size for a in self.attributes)

    def with_latent(self, shape: Sequence[int]) -> "ArchSpec":
        return replace(self, latent_shape=tuple(int(s) for s in shape))


class Encoder(nn.Module, ABC):
    """Image -> list of feature maps, one per layer; the last one is the latent z."""

    latent_shape: tuple[int, int, int]

    def feature_shapes(self, image_size: int) -> list[tuple[int, int, int]]:
        """(C, H, W) of every map :meth:`forward` returns for ``image_size`` images; by default measured
        with one forward pass of a blank batch (override when that is costly)."""
        was = self.training
        try:
            self.eval()
            with torch.no_grad():
                return [tuple(f.shape[1:]) for f in self(torch.zeros(1, 3, image_size, image_size))]
        finally:
            self.train(was)

    @abstractmethod
    def forward(self, x: torch.Tensor) -> list[torch.Tensor]: ...


class Decoder(nn.Module, ABC):
    """(encoder features, attribute code) -> image in [-1, 1]. Most decoders use only features[-1]."""

    #: The encoder maps this decoder reads, as negative indices into the encoder's list (-1 = the latent z).
    #: The latent adversary reads the shallowest of them: every deeper map is computed from it, so an
    #: attribute hidden there is hidden from everything the decoder receives. eval's probe reads them all.
    receives: tuple[int, ...] = (-1,)

    @abstractmethod
    def forward(self, features: list[torch.Tensor], code: torch.Tensor) -> torch.Tensor: ...


class Discriminator(nn.Module, ABC):
    """Latent z -> attribute logits (B, code_dim), one block of logits per attribute."""

    @abstractmethod
    def forward(self, z: torch.Tensor) -> torch.Tensor: ...


class ImageDiscriminator(nn.Module, ABC):
    """Image -> real/fake logits of any shape (a PatchGAN gives one per patch)."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class Classifier(nn.Module, ABC):
    """Image -> attribute logits (B, code_dim), one block of logits per attribute."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


#: The landmark names locators and datasets share ("left" is the image's left: the smaller x).
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass(frozen=True)
class Face:
    """A face found in a photo.

    ``landmarks``: name -> (x, y) in the photo's pixels (x right, y down, pixel centres at whole
    numbers); both eyes at least, the five :data:`LANDMARKS` where the locator gives them, and any
    other point a locator and a dataset template agree on. ``score``: the locator's confidence,
    higher is surer. ``box``: (left, top, right, bottom) around the face, for drawing.
    """

    landmarks: Mapping[str, tuple[float, float]]
    score: float
    box: tuple[float, float, float, float] | None = None

    @property
    def eye_distance(self) -> float:
        (lx, ly), (rx, ry) = self.landmarks["left_eye"], self.landmarks["right_eye"]
        return float(np.hypot(rx - lx, ry - ly))


class FaceLocator(ABC):
    """Finds faces in photos; registered through ``faderkit_face_locators``, built as ``factory(**params)``.

    Weights, if any, must come with an installed package: nothing is downloaded at run time. A
    missing optional dependency is a :class:`FaderkitError` from the factory, saying what to install.
    """

    @abstractmethod
    def locate(self, photo: np.ndarray) -> list[Face]:
        """uint8 (H, W, 3) RGB -> every face found (any order; an empty list when there is none)."""


class Split(ABC):
    """One split of a dataset: labels held in memory, images fetched by index as uint8."""

    name: str
    #: int64 (N, A): the value index of each attribute for each image.
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @abstractmethod
    def images(self, indices: np.ndarray) -> torch.Tensor:
        """uint8 (len(indices), 3, S, S), in the order asked."""


class AttributeDataset(ABC):
    """A labelled image collection read from ``root``, split into train / valid / test.

    Subclasses are registered through the ``faderkit_datasets`` hook and constructed as
    ``cls(root, image_size=..., attributes=[names] or None, **params)``.
    """

    #: Native (width, height) of the images and the crop box (left, top, right, bottom) that the
    #: loader takes before resizing; ``edit`` applies the same crop to a user's image of that shape.
    native_size: ClassVar[tuple[int, int] | None] = None
    crop_box: ClassVar[tuple[int, int, int, int] | None] = None
    split_names: ClassVar[tuple[str, ...]] = ("train", "valid", "test")

    attributes: tuple[Attribute, ...]
    root: Path
    #: Images listed in the dataset's files but left out of every split, counted by reason (e.g.
    #: ``{"unreadable": 2}``); training prints and records non-zero counts in metrics.jsonl.
    skipped: Mapping[str, int] = MappingProxyType({})

    @abstractmethod
    def split(self, name: str) -> Split:
        """The named split; an unknown name raises FaderkitError listing ``split_names``."""

    #: Names of the on-disk layouts :meth:`generate` can write, first the default; a generator that
    #: lists any takes ``layout=NAME`` (``faderkit data NAME OUT --layout ...``).
    layouts: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def generate(cls, out_dir: Path, count: int, seed: int = 0) -> None:
        """Write a synthetic copy of this dataset's on-disk layout (optional capability)."""
        raise NotImplementedError

    @classmethod
    def can_generate(cls) -> bool:
        return cls.generate.__func__ is not AttributeDataset.generate.__func__

    #: The registered face locator that finds faces like this dataset's (None: faderkit's default,
    #: for photographs); ``edit`` uses it to align a photo unless told another.
    face_locator: ClassVar[str | None] = None

    #: Where :meth:`landmark_template` comes from (a file, or the published figures it falls back
    #: on), recorded with it in every checkpoint.
    landmark_source: str | None = None

    def landmark_template(self) -> dict[str, tuple[float, float]] | None:
        """Where the landmarks sit in the native frame (before ``crop_box``): name -> (x, y), the
        names of :data:`LANDMARKS` (or others your locator gives). ``edit`` maps a photo's face onto
        it with a similarity transform, so the model sees the face placed as in training. None (the
        default): no alignment, ``edit`` crops as the loader does. Needs ``native_size``."""
        return None

    def preprocess_spec(self) -> dict:
        """How ``edit`` should crop (and align) a user's image: stored in every checkpoint."""
        spec = {"native_size": self.native_size, "crop_box": self.crop_box}
        template = self.landmark_template() if self.native_size else None
        if template:
            spec["landmarks"] = {str(k): [float(v[0]), float(v[1])] for k, v in template.items()}
            spec["face_locator"] = self.face_locator
            spec["landmark_source"] = self.landmark_source
        return spec


def select_attributes(wanted, names: Sequence[str], dataset: str, source: str | None = None,
                      hint: str = "") -> list[int]:
    """Column indices of the attributes a recipe asks for (all when ``wanted`` is None), in its order.

    For dataset plugins: ``wanted`` may be a list of names or Attributes, or a comma-separated
    string; unknown, duplicate or no names are one-line errors naming ``source`` (a file, or the
    dataset) and listing what is available.
    """
    if wanted is None:
        return list(range(len(names)))
    if isinstance(wanted, str):
        wanted = [w.strip() for w in wanted.split(",") if w.strip()]
    wanted = [getattr(w, "name", w) for w in wanted]
    if not wanted:
        raise FaderkitError(f"{dataset}: attributes is empty; name at least one, or leave it out for all")
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise FaderkitError(f"{source or dataset} has no attribute {', '.join(map(repr, unknown))}"
                            f"{': ' + hint if hint else ''}; available: {' '.join(names)}")
    dupes = sorted({w for w in wanted if wanted.count(w) > 1})
    if dupes:
        raise FaderkitError(f"{dataset}: attribute(s) asked for twice: {', '.join(dupes)}")
    return [list(names).index(w) for w in wanted]
