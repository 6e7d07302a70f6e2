"""Editing images with a trained checkpoint: the Python API behind ``faderkit edit``."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch
from PIL import Image

from . import checkpoint as ckpt
from .changemaps import valid_maps
from .codes import apply_settings, labels_to_code, logits_to_code, logits_to_labels
from .device import pick_device
from .errors import FaderkitError, brief
from .imageio import crop_box_for, crop_resize, normalise, open_image, to_tensor, to_uint8, to_unit
from .interfaces import Attribute
from .model import FaderModel, build_classifier
from .modes import MODES, OutputMode, edited, kept, output_mode
from .photo import faces as _faces
from .photo.align import Placement, face_placement, native_crop, warp_faces
from .photo.compose import paste_change, paste_changes
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
            kind = f"a faderkit {meta['kind']} checkpoint" if isinstance(meta.get("kind"), str) else "not marked as any kind"
            raise FaderkitError(f"{path} is {kind}, not a trained fader model")
        device = pick_device(device)
        recipe, attrs = check_fader_meta(meta, path)
        # built without memory (no random init to overwrite), then given the checkpoint's tensors
        with torch.device("meta"):
            model = FaderModel.build(recipe, attrs)
            classifier = build_classifier(recipe, attrs) if meta.get("has_classifier") else None
        _load_weights(model, ckpt.unprefixed("model", tensors), path)
        if classifier is not None:
            _load_weights(classifier, ckpt.unprefixed("classifier", tensors), path)
            classifier = classifier.to(device).eval()
        model = model.to(device)
        maps = tensors.get("change_maps")  # none in checkpoints trained before the local mode: it adds all the change
        if maps is not None:
            if not valid_maps(maps, attrs, recipe.data.image_size):
                raise FaderkitError(f"{path}: its change_maps tensor is not one map in [0, 1] per attribute at "
                                    f"{recipe.data.image_size} px (shape {tuple(maps.shape)}); the file is damaged")
            model.change_maps = maps.float().to(device)
        return cls(model, classifier, meta, device)

    # -- inputs
    def open(self, image: str | Path | Image.Image | np.ndarray) -> Image.Image:
        """Any image (path, PIL or HWC uint8 array) -> RGB as displayed (see :func:`faderkit.imageio.normalise`)."""
        if isinstance(image, (str, Path)):
            return open_image(image)
        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
                raise FaderkitError(f"expected a uint8 array of shape (H, W), (H, W, 3) or (H, W, 4); got {image.dtype} "
                                    f"{image.shape}")
            if min(image.shape[:2]) < 1:
                raise FaderkitError(f"the array has no pixels: shape {image.shape}")
            return normalise(Image.fromarray(image))
        if isinstance(image, Image.Image):
            return normalise(image)
        raise FaderkitError(f"expected an image path, a PIL image or a uint8 array; got {type(image).__name__}")

    def crop_box(self, photo: Image.Image) -> tuple[int, int, int, int]:
        """Where in ``photo`` the model's square comes from (the training data's crop, or the central square)."""
        return crop_box_for(photo.width, photo.height, self.preprocess.get("native_size"), self.preprocess.get("crop_box"))

    def prepare(self, image: str | Path | Image.Image | np.ndarray, **choice) -> torch.Tensor:
        """Any image -> uint8 (B, 3, S, S) as the model sees it: its face(s) aligned like the training data
        (B faces; ``choice``: ``face``, ``all_faces``, ``align``, ``locator``, see :meth:`edit`), or,
        without alignment, one crop resized like the training data."""
        photo = self.open(image)
        placements = self.placements(photo, **choice)
        if placements is not None:
            return warp_faces(np.asarray(photo), placements)
        arr = crop_resize(photo, self.image_size, self.preprocess.get("native_size"), self.preprocess.get("crop_box"))
        return to_tensor(arr)

    # -- faces
    @property
    def template(self) -> dict | None:
        """Where the training data puts the landmarks (name -> (x, y), native frame), if its dataset says."""
        return self.preprocess.get("landmarks") or None

    def aligns(self, photo: Image.Image, align: bool | None = None) -> bool:
        """Whether ``photo`` is aligned by its face: when asked (``align``), else when the model knows a
        template and the photo is neither the data's native size nor the model's own square."""
        if align is not None:
            if align and not self.template:
                raise FaderkitError("this model cannot align faces: its dataset declares no landmark template; "
                                    "leave out --align (align=True)")
            return bool(align)
        native = self.preprocess.get("native_size")
        return bool(self.template) and tuple(photo.size) not in {tuple(native or ()), (self.image_size,) * 2}

    def locator_name(self, locator: str | None = None) -> str:
        return locator or self.preprocess.get("face_locator") or _faces.DEFAULT_LOCATOR

    def find_faces(self, photo: Image.Image, locator: str | None = None) -> list:
        """Every face in ``photo`` (:class:`faderkit.interfaces.Face`), numbered left to right from 1."""
        photo = photo if isinstance(photo, Image.Image) and photo.mode == "RGB" else self.open(photo)
        return _faces.locate(np.asarray(photo), self.locator_name(locator))

    def min_eye_distance(self) -> float:
        """The smallest eye distance (photo pixels) a face may have: the model enlarges it at most
        :data:`faderkit.photo.faces.MAX_ENLARGEMENT` times."""
        t = self.template
        left, top, right, bottom = native_crop(self.preprocess["native_size"], self.preprocess.get("crop_box"))
        eyes = float(np.hypot(*np.subtract(t["right_eye"], t["left_eye"]))) if {"left_eye", "right_eye"} <= set(t) else 0.0
        return eyes * self.image_size / (right - left) / _faces.MAX_ENLARGEMENT

    def draw_faces(self, image, face: int | None = None, all_faces: bool = False, locator: str | None = None
                   ) -> tuple[Image.Image, int]:
        """``image`` with the faces found drawn on it (numbered boxes, landmarks, scores), the ones
        :meth:`edit` would edit with these choices in green (``edit --show-faces``); and how many were found."""
        photo = self.open(image)
        found = self.find_faces(photo, locator)
        try:
            chosen = _faces.choose(found, self.min_eye_distance(), face, all_faces) if self.template else []
        except FaderkitError:
            chosen = []
        return _faces.draw(photo, found, chosen), len(found)

    def placements(self, photo: Image.Image, face: int | None = None, all_faces: bool = False,
                   align: bool | None = None, locator: str | None = None) -> list[Placement] | None:
        """Where the model's square lies in ``photo`` for each face to edit; None when not aligning."""
        if not self.aligns(photo, align):
            if face is not None or all_faces:
                raise FaderkitError("--face and --all-faces choose among aligned faces; leave out --no-align")
            return None
        found = self.find_faces(photo, locator)
        chosen = _faces.choose(found, self.min_eye_distance(), face, all_faces, self.locator_name(locator))
        pre = self.preprocess
        return [face_placement(found[i].landmarks, self.template, pre["native_size"], pre.get("crop_box"),
                               self.image_size) for i in chosen]

    @torch.no_grad()
    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """The attribute labels the classifier sees in float images x (B, 3, S, S)."""
        if self.classifier is None:
            raise FaderkitError("this checkpoint has no attribute classifier; set every attribute: "
                                + ", ".join(a.name for a in self.attributes))
        return logits_to_labels(self.classifier(x), self.attributes)

    @torch.no_grad()
    def soft_values(self, images: torch.Tensor) -> list[dict[str, float | str]]:
        """What the classifier sees in uint8 images (B, 3, S, S), as slider settings, one dict per image:
        a binary attribute's probability of being present (a value in [0, 1]), an n-valued one's most
        likely value. The starting point of the faders of ``faderkit serve``."""
        if self.classifier is None:
            self.infer(images)  # the one-line error naming the attributes to set
        code = logits_to_code(self.classifier(to_unit(images.to(self.device))), self.attributes).cpu()
        out = []
        for row in code:
            values, start = {}, 0
            for a in self.attributes:
                block = row[start:start + a.size]
                values[a.name] = float(block[1]) if a.binary else a.values[int(block.argmax())]
                start += a.size
            out.append(values)
        return out

    def _base_code(self, x: torch.Tensor, settings: Mapping, own: bool = True) -> torch.Tensor:
        """The code of the image as it is: its inferred labels (or zeros when every attribute is set
        and either there is no classifier or ``own`` is false: the image's own code is not needed)."""
        names = {a.name for a in self.attributes}
        if set(settings) >= names and (self.classifier is None or not own):
            return torch.zeros(x.shape[0], sum(a.size for a in self.attributes), device=self.device)
        return labels_to_code(self.infer(x), self.attributes)

    # -- editing
    @torch.no_grad()
    def _decode(self, x: torch.Tensor, settings: Mapping, values=None, attribute: str | None = None,
                own: bool = True):
        """(D(z, y), [D(z, y') for each value], [the local mode's mask of each]) for float images x; y: the image's
        own code. ``own=False``: D(z, y) is not needed (a decoded edit) and comes back as None."""
        feats = self.model.encoder(x)
        base = self._base_code(x, settings, own)
        target = apply_settings(base, self.attributes, settings)
        recon = self.model.decoder(feats, base) if own else None
        targets = [target] if attribute is None else \
            [apply_settings(target, self.attributes, {attribute: v}) for v in values]
        masks = [self.model.edit_mask(base, t) if own else None for t in targets]
        return recon, [self.model.decoder(feats, t) for t in targets], masks

    @torch.no_grad()
    def edit_tensor(self, images: torch.Tensor, settings: Mapping[str, str | float], mode: str | None = None
                    ) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> edited uint8 (B, 3, S, S) in output ``mode`` (default: local);
        unset attributes keep their inferred values."""
        mode = output_mode(mode)
        x = to_unit(images.to(self.device))
        recon, (out,), (mask,) = self._decode(x, settings, own=mode.adds_change)
        return to_uint8(edited(x, recon, out, mode, mask)).cpu()

    @torch.no_grad()
    def change(self, images: torch.Tensor, settings: Mapping[str, str | float], mode: str | None = None
               ) -> torch.Tensor:
        """float (B, 3, S, S): what the edit changes, D(z, y') - D(z, y), in the model's [-1, 1] units, as output
        ``mode`` adds it (None: all of it)."""
        recon, (out,), (mask,) = self._decode(to_unit(images.to(self.device)), settings)
        change = out - recon
        return (change if mode is None else kept(change, output_mode(mode), mask)).cpu()

    def edit(self, image, settings: Mapping[str, str | float] | None = None, *, mode: str | None = None,
             face: int | None = None, all_faces: bool = False, align: bool | None = None, locator: str | None = None,
             **values: str | float) -> Image.Image:
        """Edit one image: ``edit("photo.jpg", {"Smiling": 0.8, "Male": 0})`` or, the same,
        ``edit("photo.jpg", Smiling=0.8, Male=0)``; returns a PIL image. The mapping reaches every
        attribute, also one named like a keyword below (``face``, ``align``, ``mode``, ...).

        A photo is aligned by its face like the training data (when the model's dataset declares
        where its landmarks sit and the photo is not already one of its images): ``face=N`` picks
        the N-th face from the left, ``all_faces=True`` edits every one, ``align=False`` crops as the
        loader does instead, ``locator`` names another registered face locator.
        ``mode`` (:mod:`faderkit.modes`): ``"local"`` (default), the whole input at its own size,
        the model's change mapped back over each face and blended in (pixels outside the blend are
        unchanged), kept where the moved attributes change the training images; ``"residual"``, all
        of the change; ``"clean"``, the same without the change's faint part (under 4/255 a pixel);
        ``"decoded"``, the decoder's S x S image of the face (the paper's output).
        """
        settings = merge_settings(settings, values)
        photo = self.open(image)
        arr = np.asarray(photo)
        placements = self.placements(photo, face, all_faces, align, locator)
        x = self.prepare(photo, align=False) if placements is None else warp_faces(arr, placements)
        return Image.fromarray(self.render(arr, x, placements, self.crop_box(photo), settings, mode))

    def compare(self, image, settings: Mapping[str, str | float] | None = None, *, mode: str | None = None,
                face: int | None = None, all_faces: bool = False, align: bool | None = None,
                locator: str | None = None, **values: str | float) -> Image.Image:
        """The input and its :meth:`edit` side by side, 2 white pixels apart (``edit --compare``): the
        photo beside a whole-photo edit, the model's square of it beside a square one."""
        photo = self.open(image)
        choice = {"face": face, "all_faces": all_faces, "align": align, "locator": locator}
        out = np.asarray(self.edit(photo, settings, mode=mode, **choice, **values))
        before = np.asarray(photo) if output_mode(mode).whole_photo else \
            self.prepare(photo, **choice)[0].permute(1, 2, 0).numpy()
        gap = np.full((out.shape[0], 2, 3), 255, dtype=np.uint8)
        return Image.fromarray(np.concatenate([before, gap, out], 1))

    def render(self, photo: np.ndarray, x: torch.Tensor, placements: Sequence[Placement] | None,
               box: Sequence[int], settings: Mapping[str, str | float], mode: str | OutputMode | None = None
               ) -> np.ndarray:
        """The edit of ``photo`` (uint8 (H, W, 3)) from what the model sees of it, prepared once:
        ``x``, uint8 (B, 3, S, S), the faces at ``placements`` (None: the one crop at ``box``, see
        :meth:`crop_box`). Returns uint8 (H, W, 3): what :meth:`edit` returns, as an array (the
        console holds photos prepared and calls this for every edit)."""
        mode = output_mode(mode)
        if not mode.whole_photo:
            if len(x) > 1:
                raise FaderkitError(f"the {mode.name} mode shows one face; choose it with --face N, or use "
                                    f"--mode {next(m for m in MODES if m.whole_photo).name}")
            return self.edit_tensor(x, settings, mode)[0].permute(1, 2, 0).numpy()
        change = self.change(x, settings, mode)
        if placements is None:
            return paste_change(photo, change[0], box)
        return paste_changes(photo, change, placements)

    @torch.no_grad()
    def sweep(self, images: torch.Tensor, attribute: str, values: Sequence[float],
              settings: Mapping[str, str | float] | None = None, mode: str | None = None) -> torch.Tensor:
        """uint8 (B, 3, S, S) -> uint8 (B, len(values), 3, S, S): one attribute slid over ``values``
        (the others as in ``settings``, else as inferred), in output ``mode``."""
        mode = output_mode(mode)
        x = to_unit(images.to(self.device))
        recon, outs, masks = self._decode(x, settings or {}, values, attribute)
        return to_uint8(torch.stack([edited(x, recon, o, mode, m) for o, m in zip(outs, masks)], 1)).cpu()


def merge_settings(settings: Mapping[str, str | float] | None, values: Mapping[str, str | float]) -> dict:
    """Slider settings given as a mapping and as keywords, in one dict; a name given both ways is an error."""
    both = sorted(set(settings or {}) & set(values))
    if both:
        raise FaderkitError(f"{', '.join(both)} given twice, in the settings and as a keyword; give each once")
    return {**(settings or {}), **values}


def check_fader_meta(meta: dict, path) -> tuple:
    """(recipe, attributes) of a fader checkpoint's metadata, each part checked: a one-line error
    when the file is consistent (its checksum holds) but was not written by faderkit's trainer."""
    def bad(what: str):
        return FaderkitError(f"{path}: its metadata {what}; it was not written by faderkit train")
    if not isinstance(meta.get("recipe"), dict):
        raise bad("has no recipe")
    recipe = validate(meta["recipe"], f"embedded in {path}", stored=True)
    raw = meta.get("attributes")
    if not isinstance(raw, list) or not raw or not all(
            isinstance(a, dict) and isinstance(a.get("name"), str) and isinstance(a.get("values"), list)
            and len(a["values"]) >= 2 for a in raw):
        raise bad("has no valid attribute list")
    attrs = tuple(Attribute.from_json(a) for a in raw)
    if meta.get("image_size") != recipe.data.image_size:
        raise bad(f"gives image_size {meta.get('image_size')!r}, its recipe {recipe.data.image_size}")
    pre = meta.get("preprocess") or {}
    if not isinstance(pre, dict):
        raise bad("has a malformed preprocess entry")
    size, box = pre.get("native_size"), pre.get("crop_box")
    if size is not None or box is not None:
        ok = (isinstance(size, list) and len(size) == 2 and isinstance(box, list) and len(box) == 4
              and all(isinstance(v, int) for v in size + box)
              and 0 <= box[0] < box[2] <= size[0] and 0 <= box[1] < box[3] <= size[1])
        if not ok:
            raise bad(f"has a crop box {box!r} that does not fit its native size {size!r}")
    marks = pre.get("landmarks")
    if marks is not None:
        ok = (isinstance(marks, dict) and size is not None and {"left_eye", "right_eye"} <= set(marks)
              and all(isinstance(v, list) and len(v) == 2 and all(isinstance(c, (int, float)) and np.isfinite(c)
                                                                   for c in v) for v in marks.values())
              and marks["left_eye"] != marks["right_eye"])
        if not ok:
            raise bad("has a landmark template that is not two distinct eyes (and other points) as [x, y] "
                      "in a native frame")
        if pre.get("face_locator") is not None and not isinstance(pre.get("face_locator"), str):
            raise bad(f"names a face locator {pre.get('face_locator')!r} that is not a name")
    return recipe, attrs


def _load_weights(module: torch.nn.Module, state: dict, path) -> None:
    # assign=True takes each tensor as it is, dtype included: a float16 weight would load and fail later
    for name, expected in module.state_dict().items():
        if name in state and state[name].dtype != expected.dtype:
            raise FaderkitError(f"{path}: its weights do not fit the architecture in its own recipe ({name} is "
                                f"{str(state[name].dtype).removeprefix('torch.')}, expected "
                                f"{str(expected.dtype).removeprefix('torch.')})")
    try:
        module.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise FaderkitError(f"{path}: its weights do not fit the architecture in its own recipe ({brief(exc)})") from None
