"""Colour attributes from the Reed et al. (2016) captions, by the Fader Networks paper's rule.

Each image has ten captions. A colour is *set* for an image when its word appears in at least
``threshold`` (default 5) of them. A caption "mentions" a colour when the colour is one of its
words: captions are lower-cased and split on anything that is not a letter, so ``red`` matches
"red," and "Red" but not "covered", "hundred" or "reddish" (each vocabulary entry is one plain
word, and only that exact word counts). Several mentions in one caption count once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np

from faderkit.errors import FaderkitError

CAPTIONS_PER_IMAGE = 10
DEFAULT_COLORS = ("red", "yellow", "white", "purple", "pink", "orange", "blue")
DEFAULT_THRESHOLD = 5
_WORD = re.compile(r"[a-z]+")


def plain_word(colour: str) -> str:
    """A vocabulary entry, lower-cased: only a plain word can be matched in a caption."""
    if not re.fullmatch(r"[A-Za-z]+", colour):
        raise ValueError(f"colour {colour!r} is not a plain word (letters a-z only, e.g. 'purple'; "
                         "multi-word colours cannot be matched)")
    return colour.lower()


def read_captions(path: Path) -> list[str]:
    """The ten captions of one image; a file with another number of lines is an error naming it.

    Trailing blank lines (a final newline, a stray empty line) are ignored; a blank line between
    captions counts as a (wrong) line.
    """
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        raise FaderkitError(f"cannot read caption file {path}: {exc.strerror or exc}") from None
    lines = text.rstrip().splitlines()
    if len(lines) != CAPTIONS_PER_IMAGE:
        raise FaderkitError(f"caption file {path} has {len(lines)} line{'s' * (len(lines) != 1)}; "
                            f"expected {CAPTIONS_PER_IMAGE} captions, one per line")
    return lines


def mentions(captions: Sequence[str], colors: Sequence[str]) -> np.ndarray:
    """int (len(colors),): in how many of the captions each colour word appears."""
    words = [set(_WORD.findall(c.lower())) for c in captions]
    return np.array([sum(c in w for w in words) for c in colors], dtype=np.int64)


def categorical_label(counts: np.ndarray, threshold: int) -> int:
    """The one colour of an image in categorical mode, or -1 when none qualifies.

    Of the colours named in at least ``threshold`` captions, the one named in the most; a tie
    goes to the colour listed first in the vocabulary.
    """
    qualifying = np.flatnonzero(counts >= threshold)
    if qualifying.size == 0:
        return -1
    return int(qualifying[np.argmax(counts[qualifying])])  # argmax keeps the first of equals
