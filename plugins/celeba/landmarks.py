"""The alignment template of CelebA's aligned images: where the five landmarks sit on average.

Read from ``list_landmarks_align_celeba.txt`` (or Kaggle's .csv) when the copy has one; else the
published means of the aligned images, as commonly quoted (approximate: the file is the
authority). Names are faderkit's landmark names; "left" is the image's left (smaller x), as in
CelebA's ``lefteye_x``.
"""

from __future__ import annotations

from pathlib import Path

from .lists import read_landmarks

#: The published means in the native 178 x 218 frame (x, y), used when the copy has no landmark file.
PUBLISHED_MEANS: dict[str, tuple[float, float]] = {
    "left_eye": (69.0, 111.0),
    "right_eye": (108.0, 111.0),
    "nose": (88.0, 134.0),
    "mouth_left": (73.0, 152.0),
    "mouth_right": (105.0, 152.0),
}
PUBLISHED = "published means"
#: faderkit's landmark names, in the order of the file's column pairs.
NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def template_from(path: Path | None) -> tuple[dict[str, tuple[float, float]], str]:
    """(name -> mean (x, y), where it came from: the file's path or :data:`PUBLISHED`)."""
    if path is None:
        return dict(PUBLISHED_MEANS), PUBLISHED
    _, values = read_landmarks(path)
    means = values.mean(axis=0)
    return {n: (round(float(means[2 * k]), 3), round(float(means[2 * k + 1]), 3)) for k, n in enumerate(NAMES)}, str(path)
