"""Editing images with a trained checkpoint: the Python API behind ``faderkit edit``."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from . import checkpoint as ckpt
from .codes import apply_settings, labels_to_code, logits_to_labels
from .device import pick_device
from .errors import FaderkitError, brief
from .imageio import crop_resize, open_image, to_tensor, to_uint8, to_unit
from .interfaces import Attribute
from .model import FaderModel, build_classifier
from .recipe import validate


class Editor:
    """A trained Fader Network ready to edit: ``Editor.load(path).edit(image, Smiling=0.8)``."""

    def __init__(self, model: FaderModel, classifier, meta: dict, device: torch.device):
        self.model, self.classifier, self.meta, self.device = model.eval(), classifier, meta, device
        self.attributes: tuple[Attribute, ...] = model.attributes
        self.image_size: int = meta["image_size"]
        self.preprocess: dict = meta.get("preprocess") or {}

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> "Editor":
        tensors, meta = ckpt.load(path)
        if meta.get("kind") != "fader":
            raise FaderkitError(f"{path} is a faderkit {meta.get('kind')} checkpoint, not a trained fader model")
        device = pick_device(device)
        recipe = validate(meta["recipe"], f"embedded in {path}")
        attrs = tuple(Attribute.from_json(a) for a in meta["attributes"])
        # built without memory (no random init to overwrite), then given the checkpoint's tensors
        with torch.device("meta"):
            model = FaderModel.build(recipe, attrs)
            classifier = build_classifier(recipe, attrs) if meta.get("has_classifier") else None
        _load_weights(model, ckpt.unprefixed("model", tensors), path)
        if classifier is not None:
            _load_weights(classifier, ckpt.unprefixed("classifier", tensors), path)
            classifier = classifier.to(device).eval()
        return cls(model.to(device), classifier, meta, device)

    # -- inputs
    def prepare(self, image: str | Path | Image.Image | np.ndarray) -> torch.Tensor:
        """Any image (path, PIL or HWC uint8 array) -> uint8 (1, 3, S, S), cropped like the training data."""
        if isinstance(image, (str, Path)):
            image = open_image(image)
        elif isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        arr = crop_resize(image, self.image_size, self.preprocess.get("native_size"), self.preprocess.get("crop_box"))
        return to_tensor(arr)

    @torch.no_grad()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """The attribute labels the classifier sees in float images x (B, 3, S, S)."""
        if self.classifier is None:
            raise FaderkitError("this checkpoint has no attribute classifier; set every attribute: "
                                + ", ".join(a.name for a in self.attributes))
        return logits_to_labels(self.classifier(x), self.attributes)

    def _base_code(self, x: torch.Tensor, settings: Mapping) -> torch.Tensor:
        names = {a.name for a in self.attributes}
        if self.classifier is None and set(settings) >= names:
            code = torch.zeros(x.shape[0], sum(a.size for a in self.attributes), device=self.device)
        else:
            code = labels_to_code(self.infer(x), self.attributes)
        return apply_settings(code, self.attributes, settings)

    # -- editing
    @torch.no_grad()
    def edit_tensor(self, images: torch.Tensor, settings: Mapping[str, str | float]) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> edited uint8 (B, 3, S, S); unset attributes keep their inferred values."""
        x = to_unit(images.to(self.device))
        code = self._base_code(x, settings)
        return to_uint8(self.model.reconstruct(x, code)).cpu()

    def edit(self, image, **settings: str | float) -> Image.Image:
        """Edit one image: ``edit("face.jpg", Smiling=0.8, Male=0)``; returns a PIL image."""
        out = self.edit_tensor(self.prepare(image), settings)[0]
        return Image.fromarray(out.permute(1, 2, 0).numpy())

    @torch.no_grad()
    def sweep(self, images: torch.Tensor, attribute: str, values: Sequence[float],
              settings: Mapping[str, str | float] | None = None) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> uint8 (B, len(values), 3, S, S): one attribute slid over ``values``
        (the others as in ``settings``, else as inferred)."""
        x = to_unit(images.to(self.device))
        feats = self.model.encoder(x)
        base = self._base_code(x, settings or {})
        outs = [self.model.decoder(feats, apply_settings(base, self.attributes, {attribute: v})) for v in values]
        return to_uint8(torch.stack(outs, 1)).cpu()


def _load_weights(module: torch.nn.Module, state: dict, path) -> None:
    try:
        module.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise FaderkitError(f"{path}: its weights do not fit the architecture in its own recipe ({brief(exc)})") from None
