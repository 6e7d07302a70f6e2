"""The faces of a photo, for a model: found by a registered locator, numbered, chosen, drawn.

Faces are numbered from 1, left to right (by the midpoint of the eyes), the way ``--show-faces``
labels them. Which to edit: the one asked for (``face=N``), every one large enough
(``all_faces``), or else the only face, or one clearly larger (twice the eye distance) than the
rest; anything else is ambiguous and a one-line error says how to choose.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..errors import FaderkitError
from ..interfaces import Face, FaceLocator

#: The locator used for a model whose dataset names none (photographs).
DEFAULT_LOCATOR = "mtcnn"

#: A face is too small to edit when the model would have to enlarge it more than this many times.
MAX_ENLARGEMENT = 2.0

HINT = "pass --no-align (align=False) if the image is already cropped like the training data"


@lru_cache(maxsize=4)
def locator(name: str) -> FaceLocator:
    """The registered face locator ``name``, built once per process (its weights are read once)."""
    from ..plugins import registries

    made = registries()["face_locator"].create(name)
    if not isinstance(made, FaceLocator):
        raise FaderkitError(f"face locator '{name}' built a {type(made).__name__}, not a FaceLocator")
    return made


def locate(photo: np.ndarray, name: str) -> list[Face]:
    """Every face ``name`` finds in uint8 (H, W, 3) ``photo``, numbered left to right (list order)."""
    faces = [f for f in locator(name).locate(photo) if {"left_eye", "right_eye"} <= set(f.landmarks)]

    def middle(f: Face) -> tuple[float, float]:
        (lx, ly), (rx, ry) = f.landmarks["left_eye"], f.landmarks["right_eye"]
        return (lx + rx) / 2, (ly + ry) / 2

    return sorted(faces, key=middle)


def no_face(name: str) -> str:
    """What to say when locator ``name`` found no face: which locator looked, and the others to try
    (a toy-faces model's locator finds no face in a photograph; ``mtcnn`` does)."""
    from ..plugins import registries

    others = [n for n in registries()["face_locator"].list() if n != name]
    try_ = (f"try another locator with --locator NAME (locator=NAME): {', '.join(others)}; or " if others else "")
    return f"no face found in the image by the '{name}' face locator; {try_}{HINT}"


def choose(faces: Sequence[Face], min_eye_distance: float, face: int | None = None,
           all_faces: bool = False, locator: str | None = None) -> list[int]:
    """Indices (0-based, into ``faces``) of the faces to edit; a one-line FaderkitError when none fits.

    ``min_eye_distance``: the eye distance (photo pixels) below which a face is too small;
    ``locator``: the name of the locator that found ``faces``, for the message when there are none.
    """
    if face is not None and all_faces:
        raise FaderkitError("--face and --all-faces: choose one")
    if not faces:
        raise FaderkitError(no_face(locator) if locator else f"no face found in the image; {HINT}")
    numbers = f"1-{len(faces)}" if len(faces) > 1 else "1"
    if face is not None:
        if isinstance(face, bool) or not isinstance(face, (int, np.integer)) or not 1 <= face <= len(faces):
            raise FaderkitError(f"--face {face!r}: the image has {len(faces)} face(s), numbered {numbers} left to "
                                "right (--show-faces draws them)")
        _check_size(faces[face - 1], face, min_eye_distance)
        return [face - 1]
    big = [i for i, f in enumerate(faces) if f.eye_distance >= min_eye_distance]
    if not big:
        best = max(range(len(faces)), key=lambda i: faces[i].eye_distance)
        _check_size(faces[best], best + 1, min_eye_distance)
    if all_faces:
        return big
    if len(big) == 1:
        return big
    by_size = sorted(big, key=lambda i: faces[i].eye_distance, reverse=True)
    if faces[by_size[0]].eye_distance >= 2 * faces[by_size[1]].eye_distance:
        return by_size[:1]
    raise FaderkitError(f"the image has {len(big)} faces large enough to edit; choose one with --face N "
                        f"(face=N; numbered {numbers} left to right, --show-faces draws them) or edit all "
                        "with --all-faces (all_faces=True)")


def _check_size(f: Face, number: int, min_eye_distance: float) -> None:
    if f.eye_distance < min_eye_distance:
        raise FaderkitError(f"face {number} is too small to edit: its eyes are {f.eye_distance:.1f} px apart, this "
                            f"model needs at least {min_eye_distance:.1f}; use a larger photo, or {HINT}")


def draw(photo: Image.Image, faces: Sequence[Face], chosen: Sequence[int] = ()) -> Image.Image:
    """``photo`` with each face's box, landmarks and number drawn (the chosen ones in green, others amber)."""
    out = photo.convert("RGB")
    pen = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 400))
    try:
        font = ImageFont.load_default(size=max(12, 6 * width))
    except TypeError:  # Pillow < 10.1: one size only
        font = ImageFont.load_default()
    for i, f in enumerate(faces):
        colour = (40, 220, 80) if i in chosen else (255, 180, 0)
        box = f.box
        if box is None:
            (lx, ly), (rx, ry) = f.landmarks["left_eye"], f.landmarks["right_eye"]
            d = f.eye_distance
            box = ((lx + rx) / 2 - d, (ly + ry) / 2 - d, (lx + rx) / 2 + d, (ly + ry) / 2 + 1.5 * d)
        pen.rectangle(box, outline=colour, width=width)
        r = 1.5 * width
        for x, y in f.landmarks.values():
            pen.ellipse((x - r, y - r, x + r, y + r), fill=(255, 40, 40), outline=(255, 255, 255))
        label = f"{i + 1} ({f.score:.2f})"
        pen.text((max(0, box[0] + width), max(0, box[1] - 8 * width - 2)), label, fill=colour, font=font,
                 stroke_width=max(1, width // 2), stroke_fill=(0, 0, 0))
    return out
