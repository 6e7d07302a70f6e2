"""The mixing console's state, apart from HTTP: the images held for editing and the edits themselves.

Everything the page does goes through :class:`Console`, which calls only the public Editor API
(``prepare``, ``soft_values``, ``edit_tensor``), so an edit in the page is the library's edit.
Nothing is written to disk: images live in memory, the most recent ``max_images`` of them.
"""

from __future__ import annotations

import io
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from PIL import Image

from ..codes import MAX_SLIDER, apply_settings
from ..errors import FaderkitError
from .uploads import read_image, too_large

#: Extra options of ``Editor.edit_tensor`` the page offers as a choice, name -> (label, choices), the
#: first choice the default. The page draws one group of choices per entry and sends the picks in
#: every edit request; the console passes them to ``edit_tensor`` as keyword arguments. Empty until
#: the editor has such options (an output mode, face alignment).
EDIT_OPTIONS: dict[str, tuple[str, tuple[str, ...]]] = {}


class NotHeld(LookupError):
    """An image id the console does not (or no longer) hold."""


@dataclass
class Held:
    """One image ready to edit: prepared like the training data, with the classifier's view of it."""

    x: torch.Tensor          # uint8 (1, 3, S, S)
    inferred: dict           # attribute -> soft value (binary) or value name (n-valued)
    name: str


def png_bytes(chw: torch.Tensor) -> bytes:
    """uint8 (3, H, W) -> PNG bytes (lossless; low compression, since speed is what matters here)."""
    buf = io.BytesIO()
    Image.fromarray(chw.permute(1, 2, 0).numpy()).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def parse_range(text: str) -> tuple[float, float]:
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
                 max_upload_bytes: int = 20 * 2**20, max_pixels: int = 25_000_000,
                 test_images=None):
        self.editor, self.name, self.fader_range = editor, name, tuple(float(v) for v in fader_range)
        self.max_images, self.max_upload_bytes, self.max_pixels = max_images, max_upload_bytes, max_pixels
        self.test_images = test_images
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
            "options": [{"name": n, "label": label, "choices": list(choices)}
                        for n, (label, choices) in EDIT_OPTIONS.items()],
            "limits": {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels},
            "max_images": self.max_images,
        }

    def defaults(self) -> dict:
        """Fader starting points when the checkpoint has no classifier: absent / the first value."""
        return {a.name: 0.0 if a.binary else a.values[0] for a in self.editor.attributes}

    # -- taking images in
    def read_upload(self, data: bytes, name: str = "the file") -> torch.Tensor:
        """Upload bytes -> the prepared uint8 (1, 3, S, S); UploadError says what is wrong. At most two
        decode at once, so that many large uploads together cannot exhaust memory."""
        if len(data) > self.max_upload_bytes:
            raise too_large(len(data), self.max_upload_bytes)
        with self._decode_slots:
            return self.editor.prepare(read_image(data, self.max_pixels, name))

    def add_upload(self, data: bytes, name: str = "the file") -> dict:
        return self.add(self.read_upload(data, name), name)

    def add_test_image(self, index: int) -> dict:
        if self.test_images is None:
            raise NotHeld("this server offers no test images")
        return self.add(self.test_images.image(index), f"test image {index}")

    def add(self, x: torch.Tensor, name: str) -> dict:
        """Hold a prepared uint8 (1, 3, S, S) image; returns its id and where its faders start."""
        with self._model_lock:
            inferred = self.editor.soft_values(x)[0] if self.editor.classifier is not None else self.defaults()
        image_id = secrets.token_urlsafe(12)
        with self._images_lock:
            self._images[image_id] = Held(x, inferred, name)
            while len(self._images) > self.max_images:
                self._images.popitem(last=False)
        return {"id": image_id, "name": name, "inferred": inferred,
                "values": {k: round(v, 2) if isinstance(v, float) else v for k, v in inferred.items()}}

    def get(self, image_id: str) -> Held:
        with self._images_lock:
            held = self._images.get(image_id)
            if held is None:
                raise NotHeld(f"this server no longer holds that image (it keeps the {self.max_images} most "
                              "recent); open it again")
            self._images.move_to_end(image_id)
            return held

    def input_png(self, image_id: str) -> bytes:
        return png_bytes(self.get(image_id).x[0])

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
            if k not in EDIT_OPTIONS:
                raise FaderkitError(f"unknown option '{k}'" + (f"; offered: {', '.join(EDIT_OPTIONS)}" if EDIT_OPTIONS
                                                              else "; this server offers none"))
            if v not in EDIT_OPTIONS[k][1]:
                raise FaderkitError(f"{k}={v!r}: choose one of {', '.join(EDIT_OPTIONS[k][1])}")
        return values, options

    def edit(self, image_id: str, values: Any, options: Any = None) -> torch.Tensor:
        """The library's edit of a held image: uint8 (3, S, S)."""
        held = self.get(image_id)
        settings, extra = self.check(values, options)
        with self._model_lock:
            return self.editor.edit_tensor(held.x, settings, **extra)[0]
