"""The mixing console's state, apart from HTTP: the images held for editing and the edits themselves.

Everything the page does goes through :class:`Console`, which calls only the public Editor API
(``prepare``, ``crop_box``, ``aligns``, ``placements``, ``soft_values``, ``render``), so an edit in the
page is the library's ``Editor.edit`` of the photo the console holds (``Editor.render`` of the photo
prepared once), in any output mode of :mod:`faderkit.modes`: with every face found aligned like the training data
(``edit(photo, all_faces=True)``) when the model knows its data's landmark template and the photo is
not already one of its crops, or of the loader's crop (``edit(photo, align=False)``). Nothing is
written to disk: images live in memory, the most recent ``max_images`` of them; a photo whose longer
side passes ``max_side`` is held downscaled to it, so that a residual edit (the whole photo) stays live.
"""

from __future__ import annotations

import io
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image

from ..photo.align import warp_faces
from ..codes import MAX_SLIDER, apply_settings
from ..errors import FaderkitError
from ..modes import MODES, OUTPUT_MODES, output_mode
from .uploads import read_image, too_large

#: Options of the edit the page offers as a choice, name -> (label, choices), the first choice the
#: default (``Editor.edit``'s). The page draws one group of choices per entry and sends the picks in
#: every edit request (see :meth:`Console.edit`).
EDIT_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {"mode": ("Output", OUTPUT_MODES)}
#: Offered beside them when the model can align faces (its dataset declares a landmark template).
ALIGN_OPTION = ("Faces", ("aligned", "crop"))
#: A few words beside a choice in the page.
OPTION_NOTES = {"mode": {m.name: m.note for m in MODES},
                "align": {"aligned": "each face found, aligned like the training data (edit's default)",
                          "crop": "the loader's crop, as edit --no-align"}}


class NotHeld(LookupError):
    """An image id the console does not (or no longer) hold."""


@dataclass
class Picture:
    """An image ready to edit: the photo, and what the model sees of it."""

    crop: torch.Tensor       # uint8 (1, 3, S, S): the loader's crop, Editor.prepare(photo, align=False)
    photo: np.ndarray        # uint8 (H, W, 3): the photo as held (downscaled to max_side at most)
    box: tuple               # Editor.crop_box(photo): where the crop comes from
    faces: torch.Tensor | None = None  # uint8 (B, 3, S, S): each face found, aligned; None: not aligned
    placements: list | None = None     # where each of those faces lies in the photo
    note: str = ""           # what became of the alignment, for the page

    @property
    def nbytes(self) -> int:
        """The memory the picture holds."""
        return (self.crop.nbytes + self.photo.nbytes + (0 if self.faces is None else self.faces.nbytes))

    @classmethod
    def of(cls, editor, photo: Image.Image) -> "Picture":
        """Both views of ``photo``: its loader's crop, and (when ``Editor.edit`` would align it) every
        face found in it, aligned. No face found, or none large enough: the crop alone, and a note."""
        arr = np.asarray(photo.convert("RGB"))
        picture = cls(editor.prepare(photo, align=False), arr, editor.crop_box(photo))
        if editor.aligns(photo):
            try:
                picture.placements = editor.placements(photo, all_faces=True)
            except FaderkitError as exc:
                picture.note = f"{str(exc).split(';')[0].capitalize()}: the loader's crop is edited instead."
            else:
                picture.faces = warp_faces(arr, picture.placements)
                n = len(picture.placements)
                picture.note = (f"{n} face{'s' if n > 1 else ''} found, aligned like the training data"
                                + ("; the faders start where the classifier places face 1 (the leftmost), "
                                   "and a fader you move sets that attribute on every face." if n > 1 else "."))
        return picture

    def view(self, align: str = "aligned") -> torch.Tensor:
        """What the model edits: the aligned faces (``align="aligned"``, when any were found) or the crop."""
        return self.faces if align == "aligned" and self.faces is not None else self.crop


@dataclass
class Held:
    """One image held for editing, with the classifier's view of it."""

    picture: Picture
    inferred: dict           # attribute -> soft value (binary) or value name (n-valued)
    name: str

    @property
    def start(self) -> dict:
        """Where the page's faders start: the classifier's values, binary ones rounded to 0.01."""
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in self.inferred.items()}


def shrink(photo: Image.Image, max_side: int) -> Image.Image:
    """``photo`` with its longer side at most ``max_side`` pixels (Lanczos; the aspect ratio kept)."""
    if max(photo.size) <= max_side:
        return photo
    scale = max_side / max(photo.size)
    return photo.resize((max(1, round(photo.width * scale)), max(1, round(photo.height * scale))), Image.LANCZOS)


def png_bytes(image: torch.Tensor | np.ndarray) -> bytes:
    """uint8 (3, H, W) tensor or (H, W, 3) array -> PNG bytes (lossless; low compression, since speed
    is what matters here)."""
    if isinstance(image, torch.Tensor):
        image = image.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def parse_fader_range(text: str) -> tuple[float, float]:
    """'-1:2' -> (-1.0, 2.0): the faders' span, which must hold 0 (absent) and 1 (present)."""
    lo, sep, hi = str(text).partition(":")
    try:
        low, high = float(lo), float(hi)
    except ValueError:
        raise FaderkitError(f"--fader-range {text!r}: expected MIN:MAX, e.g. -1:2") from None
    if not sep or not (-MAX_SLIDER <= low <= 0 and 1 <= high <= MAX_SLIDER):
        raise FaderkitError(f"--fader-range {text!r}: MIN must be in [-{MAX_SLIDER:g}, 0] and MAX in "
                            f"[1, {MAX_SLIDER:g}] so that 0 (absent) and 1 (present) are on the fader")
    return low, high


class Console:
    """A loaded Editor serving a page: holds images, answers edits one model call at a time."""

    def __init__(self, editor, *, name: str = "model", fader_range=(-1.0, 2.0), max_images: int = 32,
                 max_upload_bytes: int = 20 * 2**20, max_pixels: int = 25_000_000, max_side: int = 1024,
                 max_held_bytes: int = 256 * 2**20, test_images=None):
        self.editor, self.name, self.fader_range = editor, name, tuple(float(v) for v in fader_range)
        self.max_images, self.max_upload_bytes, self.max_pixels = max_images, max_upload_bytes, max_pixels
        self.max_side, self.max_held_bytes = max_side, max_held_bytes
        self.test_images = test_images
        self.options = dict(EDIT_OPTIONS)
        if editor.template:
            self.options["align"] = ALIGN_OPTION
        self._images: OrderedDict[str, Held] = OrderedDict()
        self._images_lock = threading.Lock()
        # One model call at a time: each already uses every core, and queued calls would only slow
        # each other down.
        self._model_lock = threading.Lock()
        self._decode_slots = threading.BoundedSemaphore(2)

    # -- what the page needs to draw itself
    def describe(self) -> dict:
        e = self.editor
        return {
            "checkpoint": self.name,
            "image_size": e.image_size,
            "step": e.meta.get("step"),
            "has_classifier": e.classifier is not None,
            "attributes": [{"name": a.name, "values": list(a.values), "binary": a.binary} for a in e.attributes],
            "range": list(self.fader_range),
            "options": [{"name": n, "label": label, "choices": list(choices), "notes": OPTION_NOTES.get(n, {})}
                        for n, (label, choices) in self.options.items()],
            "modes": [m.as_json() for m in MODES],
            "limits": {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                       "max_side": self.max_side},
            "max_images": self.max_images, "max_held_bytes": self.max_held_bytes,
        }

    def defaults(self) -> dict:
        """Fader starting points when the checkpoint has no classifier: absent / the first value."""
        return {a.name: 0.0 if a.binary else a.values[0] for a in self.editor.attributes}

    # -- taking images in
    def read_upload(self, data: bytes, name: str = "the file") -> Picture:
        """Upload bytes -> a :class:`Picture` (the photo downscaled to ``max_side``); UploadError says
        what is wrong. At most two decode at once, so that many large uploads cannot exhaust memory."""
        if len(data) > self.max_upload_bytes:
            raise too_large(len(data), self.max_upload_bytes)
        with self._decode_slots:
            return Picture.of(self.editor, shrink(read_image(data, self.max_pixels, name), self.max_side))

    def add_upload(self, data: bytes, name: str = "the file") -> dict:
        return self.add(self.read_upload(data, name), name)

    def add_test_image(self, index: int) -> dict:
        if self.test_images is None:
            raise NotHeld("this server offers no test images")
        x = self.test_images.image(index)  # already the model's crop: the photo is x itself
        return self.add(Picture(x, x[0].permute(1, 2, 0).numpy(), (0, 0, x.shape[-1], x.shape[-2])),
                        f"test image {index}")

    def add(self, picture: Picture, name: str) -> dict:
        """Hold a picture; returns its id and where its faders start (face 1's values, when faces were found)."""
        x = picture.view()[:1]
        with self._model_lock:
            inferred = self.editor.soft_values(x)[0] if self.editor.classifier is not None else self.defaults()
        image_id = secrets.token_urlsafe(12)
        held = Held(picture, inferred, name)
        with self._images_lock:
            self._images[image_id] = held
            # the most recent max_images, and no more than max_held_bytes of them (the newest is always held)
            while len(self._images) > self.max_images or (
                    len(self._images) > 1 and sum(h.picture.nbytes for h in self._images.values()) > self.max_held_bytes):
                self._images.popitem(last=False)
        height, width = picture.photo.shape[:2]
        return {"id": image_id, "name": name, "inferred": inferred, "size": [width, height],
                "faces": 0 if picture.faces is None else len(picture.faces), "note": picture.note,
                "values": held.start}

    def get(self, image_id: str) -> Held:
        with self._images_lock:
            held = self._images.get(image_id)
            if held is None:
                raise NotHeld(f"this server no longer holds that image (it keeps the {self.max_images} most "
                              f"recent, {self.max_held_bytes / 2**20:g} MB at most); open it again")
            self._images.move_to_end(image_id)
            return held

    def input_png(self, image_id: str, align: str = "aligned") -> bytes:
        """The image as the model sees it (what a decoded edit replaces): face 1 aligned, or the crop."""
        if align not in ALIGN_OPTION[1]:
            raise FaderkitError(f"align={align!r}: choose one of {', '.join(ALIGN_OPTION[1])}")
        return png_bytes(self.get(image_id).picture.view(align)[0])

    def photo_png(self, image_id: str) -> bytes:
        """The photo as held (what a residual edit changes)."""
        return png_bytes(self.get(image_id).picture.photo)

    # -- editing
    def check(self, values: Any, options: Any) -> tuple[dict, dict]:
        """The settings and options of an edit request, checked; FaderkitError says what is wrong."""
        if not isinstance(values, Mapping) or not all(isinstance(v, (int, float, str)) and not isinstance(v, bool)
                                                      for v in values.values()):
            raise FaderkitError("values must map attribute names to numbers or value names")
        values = dict(values)
        # the library's own checks (unknown name, non-finite or out-of-range value, unknown value name)
        apply_settings(torch.zeros(1, sum(a.size for a in self.editor.attributes)), self.editor.attributes, values)
        low, high = self.fader_range
        for a in self.editor.attributes:
            v = values.get(a.name)
            if a.binary and isinstance(v, (int, float)) and not low <= v <= high:
                raise FaderkitError(f"{a.name}={v}: this console's faders go from {low:g} to {high:g}")
        options = dict(options or {})
        for k, v in options.items():
            if k not in self.options:
                raise FaderkitError(f"unknown option '{k}'" + (f"; offered: {', '.join(self.options)}"
                                                              if self.options else "; this server offers none"))
            if v not in self.options[k][1]:
                raise FaderkitError(f"{k}={v!r}: choose one of {', '.join(self.options[k][1])}")
        return values, options

    def edit(self, image_id: str, values: Any, options: Any = None) -> np.ndarray:
        """``Editor.edit`` of a held photo, uint8 (H, W, 3), through ``Editor.render`` (the photo is
        prepared once, when it is opened): with every face aligned (``edit(photo, all_faces=True)``)
        or the loader's crop (``align: crop``, or no face found: ``edit(photo, align=False)``). A mode
        that shows the model's own square shows face 1's.

        With several faces the faders start at face 1's values, so only the attributes whose fader
        has left its start are set, on every face; the others keep each face's own (as
        ``edit --all-faces --set NAME=V`` does for the attributes it names)."""
        held = self.get(image_id)
        settings, options = self.check(values, options)
        mode = output_mode(options.get("mode"))
        picture = held.picture
        x = picture.view(options.get("align", ALIGN_OPTION[1][0]))
        placements = None if x is picture.crop else picture.placements
        if not mode.whole_photo:
            x, placements = x[:1], placements and placements[:1]
        elif len(x) > 1:
            settings = {k: v for k, v in settings.items() if held.start.get(k) != v}
        with self._model_lock:
            return self.editor.render(picture.photo, x, placements, picture.box, settings, mode)
