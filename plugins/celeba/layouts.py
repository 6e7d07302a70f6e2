"""Where CelebA's files are: the three ways people download it, found from the folder a user names.

- ``original`` (the authors' release, unzipped flat): ``img_align_celeba/``, ``list_attr_celeba.txt``,
  ``list_eval_partition.txt``, optionally ``list_landmarks_align_celeba.txt``. The authors' Google
  Drive keeps them in ``Img/``, ``Anno/`` and ``Eval/``; that tree is read too.
- ``kaggle``: ``img_align_celeba/img_align_celeba/*.jpg`` (the zip nests the folder) and the same
  lists as CSV (``list_attr_celeba.csv``, ``list_eval_partition.csv``, ``list_landmarks_align_celeba.csv``).
- ``torchvision``: ``CelebA(root, download=True)`` puts the original files in ``root/celeba/``.

Each list is looked up on its own (``.txt`` first, then ``.csv``), so a folder that mixes them (a
CSV label file beside a txt partition, Kaggle's CSVs with a flat image folder) is read as it is;
:class:`Layout` says which files were used. The user may name the folder holding the files or its
parent; a folder with only some of the files is reported as such instead of being searched past.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faderkit.errors import FaderkitError

IMAGES = "img_align_celeba"
ATTRIBUTES = "list_attr_celeba"
PARTITION = "list_eval_partition"
LANDMARKS = "list_landmarks_align_celeba"
TORCHVISION_FOLDER = "celeba"
#: Google Drive's sub-folders for each kind of file (a flat folder holds them all).
DRIVE = {IMAGES: "Img", ATTRIBUTES: "Anno", LANDMARKS: "Anno", PARTITION: "Eval"}

LOOKED_FOR = (f"the original layout ({IMAGES}/, {ATTRIBUTES}.txt, {PARTITION}.txt), "
              f"the Kaggle layout ({IMAGES}/{IMAGES}/, {ATTRIBUTES}.csv, {PARTITION}.csv) "
              f"and torchvision's ({TORCHVISION_FOLDER}/ holding the original files)")


@dataclass(frozen=True)
class Layout:
    """The files of one CelebA copy. ``name``: original, kaggle or torchvision (by what was found)."""

    name: str
    folder: Path  # the folder holding the label files
    images: Path
    attributes: Path
    partition: Path
    landmarks: Path | None

    def describe(self) -> str:
        def rel(p: Path) -> str:
            try:
                return str(p.relative_to(self.folder))
            except ValueError:
                return str(p)
        parts = [f"images {rel(self.images)}/", f"labels {rel(self.attributes)}", f"split {rel(self.partition)}",
                 f"landmarks {rel(self.landmarks)}" if self.landmarks else "no landmark file"]
        return f"CelebA ({self.name} layout) in {self.folder}: {', '.join(parts)}"


def _first(folder: Path, stem: str) -> Path | None:
    """The txt or csv file named ``stem`` in ``folder`` (or its Google Drive sub-folder)."""
    for where in (folder, folder / DRIVE[stem]):
        for ext in (".txt", ".csv"):
            if (where / (stem + ext)).is_file():
                return where / (stem + ext)
    return None


def _images(folder: Path) -> Path | None:
    """Kaggle's nested image folder when it is there, else the flat one."""
    for where in (folder, folder / DRIVE[IMAGES]):
        if (where / IMAGES).is_dir():
            nested = where / IMAGES / IMAGES
            return nested if nested.is_dir() else where / IMAGES
    return None


def _has_any(folder: Path) -> bool:
    return _images(folder) is not None or _first(folder, ATTRIBUTES) is not None or _first(folder, PARTITION) is not None


def _read_folder(folder: Path, found_under: Path | None) -> Layout:
    images, attributes, partition = _images(folder), _first(folder, ATTRIBUTES), _first(folder, PARTITION)
    csv = any(p is not None and p.suffix == ".csv" for p in (attributes, partition))
    nested = images is not None and images.name == IMAGES and images.parent.name == IMAGES
    name = ("kaggle" if csv or nested else
            "torchvision" if found_under is not None and folder.name == TORCHVISION_FOLDER else "original")
    missing = [what for what, p in ((f"{IMAGES}/", images), (f"{ATTRIBUTES}.txt (or .csv)", attributes),
                                    (f"{PARTITION}.txt (or .csv)", partition)) if p is None]
    if missing:
        have = [f"{IMAGES}/" if images else None, attributes and attributes.name, partition and partition.name]
        raise FaderkitError(f"CelebA folder {folder} ({name} layout) lacks {', '.join(missing)}; it has "
                            f"{', '.join(h for h in have if h)}{_zip_hint(folder)}")
    return Layout(name, folder, images, attributes, partition, _first(folder, LANDMARKS))


def _zip_hint(folder: Path) -> str:
    zips = sorted(p.name for p in folder.glob("*.zip")) if folder.is_dir() else []
    return f" (found {', '.join(zips)}: unzip it there first)" if zips else ""


def find_layout(root: Path) -> Layout:
    """The CelebA copy in ``root`` or in one sub-folder of it; a one-line FaderkitError otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise FaderkitError(f"CelebA root {root} does not exist or is not a folder")
    if _has_any(root):
        return _read_folder(root, None)
    try:
        subs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError as exc:
        raise FaderkitError(f"cannot list {root}: {exc.strerror or exc}") from None
    hits = [p for p in subs if _has_any(p)]
    if len(hits) > 1:
        raise FaderkitError(f"{root} holds several CelebA folders ({', '.join(p.name for p in hits)}); "
                            f"set data.root to the one to use")
    if hits:
        return _read_folder(hits[0], root)
    raise FaderkitError(f"no CelebA in {root} or its sub-folders: looked for {LOOKED_FOR}; set data.root to the "
                        f"folder holding them or its parent{_zip_hint(root)}")
