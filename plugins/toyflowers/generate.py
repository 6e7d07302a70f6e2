"""Write a toy-flowers dataset in the real Oxford-102 on-disk layout, reproducibly and atomically.

Flower ``i`` (1-based) depends only on ``(seed, i)``: :func:`flower` rebuilds its identity, colour
and captions at any time, which is what makes ground-truth renders in another colour possible.

Captions are noisy like real ones: 6 to 9 of the ten name the true petal colour; of the others,
up to all name a confusable colour ("pink" for red, "purple" for blue) and the rest name none;
up to three mention the centre's colour ("with a yellow center"). No colour other than the true
one is ever named in more than four captions, so the paper's 5-of-10 rule always recovers the
true colour, while a looser rule (any mention) would not.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

from faderkit.synthetic import atomic_folder, check_count_and_seed, write_in_chunks

from .render import COLORS, Identity, render, sample_identity

#: Bump whenever a change to the renderer or sampler alters the files a seed produces.
GENERATOR_VERSION = 1
JPEG_QUALITY = 92

CONFUSABLE = {"red": ("orange", "pink"), "yellow": ("orange", "white"), "white": ("pink", "yellow"),
              "purple": ("pink", "blue"), "pink": ("purple", "red", "white"), "orange": ("red", "yellow"),
              "blue": ("purple",)}
_NUMBERS = {5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve"}
_WITH_COLOUR = (
    "this flower has {c} petals{centre}.",
    "the petals on this flower are {c}{centre}.",
    "a {size} flower with {shape} {c} petals{centre}.",
    "this flower is {c} in color, with {shape} petals{centre}.",
    "this flower has {n} {shape} petals that are {c}{centre}.",
    "a flower with {c} petals that are {shape} and {size}{centre}.",
)
_WITHOUT_COLOUR = (
    "this flower has {n} {shape} petals{centre}.",
    "the petals of this flower are {shape} and {size}{centre}.",
    "a {size} flower with petals that spread out from the middle{centre}.",
    "this flower has {shape} petals arranged in a ring{centre}.",
)
_CENTRE = (" and {a} {cc} center", " with {a} {cc} stamen", " surrounding {a} {cc} pistil")


def flower(seed: int, i: int) -> tuple[Identity, str, list[str]]:
    """The identity, true petal colour and ten captions of flower ``i`` of the dataset made with ``seed``."""
    rng = np.random.default_rng([int(seed), int(i)])
    identity = sample_identity(rng)
    color = COLORS[int(rng.integers(len(COLORS)))]
    return identity, color, captions(rng, identity, color)


def captions(rng: np.random.Generator, idt: Identity, color: str) -> list[str]:
    """Ten captions: the true colour in 6..9, a confusable one in up to the rest, the centre in up to 3."""
    k_true = int(rng.integers(6, 10))
    n_wrong = int(rng.integers(0, 10 - k_true + 1))
    wrong = CONFUSABLE[color][int(rng.integers(len(CONFUSABLE[color])))]
    n_centre = int(rng.integers(0, 4))
    if idt.centre in COLORS and idt.centre != color:  # keep every other colour at 4 captions or fewer
        n_centre = min(n_centre, 4 - (n_wrong if wrong == idt.centre else 0))
    petal_words = [color] * k_true + [wrong] * n_wrong + [None] * (10 - k_true - n_wrong)
    order = rng.permutation(10)
    centre_at = set(rng.permutation(10)[:n_centre].tolist())
    shape_words = ("pointed", "thin", "narrow") if idt.pointed else ("rounded", "broad", "oval")
    size = "large" if idt.radius > 0.36 * min(idt.width, idt.height) else "small"
    out = []
    for j in range(10):
        word = petal_words[order[j]]
        templates = _WITH_COLOUR if word else _WITHOUT_COLOUR
        template = templates[int(rng.integers(len(templates)))]
        centre = _CENTRE[int(rng.integers(len(_CENTRE)))].format(a="an" if idt.centre[0] in "aeiou" else "a", cc=idt.centre) if j in centre_at else ""
        shape = shape_words[int(rng.integers(len(shape_words)))]
        out.append(template.format(c=word, centre=centre, shape=shape, size=size, n=_NUMBERS[idt.n_petals]))
    return out


def image_name(i: int) -> str:
    return f"image_{i:05d}.jpg"


def split_ids(count: int, seed: int) -> dict[str, np.ndarray]:
    """1-based ids per split: 10% valid and 10% test (at least one each), the rest train, interleaved."""
    perm = np.random.default_rng([int(seed), 2**31 - 1]).permutation(np.arange(1, count + 1))
    n_valid = n_test = max(1, count // 10)
    return {"trnid": np.sort(perm[n_valid + n_test:]), "valid": np.sort(perm[:n_valid]),
            "tstid": np.sort(perm[n_valid:n_valid + n_test])}


def write_mat(path: Path, variables: dict) -> None:
    """scipy.io.savemat (MATLAB 5 format), with the creation time in its text header replaced by a fixed
    text, so that the same seed gives byte-identical files."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables)
    data = bytearray(buf.getvalue())
    data[:116] = b"MATLAB 5.0 MAT-file, written by faderkit toyflowers".ljust(116, b" ")  # the 116-byte text field
    Path(path).write_bytes(bytes(data))


def _write_range(args: tuple[str, int, int, int]) -> list[int]:
    """Render images start..stop-1 and their caption files into folder; returns their class labels."""
    folder, seed, start, stop = args
    labels = []
    for i in range(start, stop):
        identity, color, caps = flower(seed, i)
        Image.fromarray(render(identity, color)).save(os.path.join(folder, "jpg", image_name(i)),
                                                      format="JPEG", quality=JPEG_QUALITY)
        cdir = os.path.join(folder, "text_c10", f"class_{identity.species:05d}")
        os.makedirs(cdir, exist_ok=True)
        with open(os.path.join(cdir, f"image_{i:05d}.txt"), "w") as f:
            f.write("\n".join(caps) + "\n")
        labels.append(identity.species)
    return labels


def generate(out_dir: str | Path, count: int, seed: int = 0, progress: bool = True, workers: int = 2) -> Path:
    """Write ``count`` flowers, their captions and the two .mat files into ``out_dir`` (missing or empty).

    Everything is written into a temporary folder beside ``out_dir`` and renamed into place at the
    end, so an interrupted run never leaves a folder that looks complete. The same seed gives
    byte-identical files.
    """
    out_dir = Path(out_dir)
    count, seed = check_count_and_seed("toyflowers", count, seed, 3, "one image per split")
    with atomic_folder(out_dir, "toy flowers") as tmp:
        (tmp / "jpg").mkdir()
        (tmp / "text_c10").mkdir()
        labels = write_in_chunks(_write_range, tmp, seed, count, workers=workers, progress=progress,
                                 label=f"writing toy flowers to {out_dir}")
        # 1 x N rows of doubles, like the published files
        write_mat(tmp / "imagelabels.mat", {"labels": np.array([labels], dtype=np.float64)})
        write_mat(tmp / "setid.mat", {k: v[None].astype(np.float64) for k, v in split_ids(count, seed).items()})
        meta = {"generator": "faderkit toyflowers", "version": GENERATOR_VERSION, "seed": seed, "count": count,
                "colors": list(COLORS), "jpeg_quality": JPEG_QUALITY}
        (tmp / "toyflowers.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out_dir

