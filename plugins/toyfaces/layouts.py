"""Where a toy dataset's files go and how its lists are written, for each CelebA layout people download.

- ``original``: ``img_align_celeba/`` and the lists as space-separated .txt, like the authors' release.
- ``kaggle``: ``img_align_celeba/img_align_celeba/`` and the lists as .csv, like the Kaggle copy
  (which has no identity file).
- ``torchvision``: the original files under ``celeba/``, like ``torchvision.datasets.CelebA``.

Every layout gets the aligned landmarks (each face's true eye, nose and mouth-corner positions,
rounded to whole pixels like CelebA's), an identity list (every toy face is its own person) and a
box list (the head's box in the aligned frame: toy faces have no in-the-wild originals).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

LAYOUTS = ("original", "kaggle", "torchvision")
LANDMARK_COLUMNS = ("lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y "
                    "leftmouth_x leftmouth_y rightmouth_x rightmouth_y").split()
BBOX_COLUMNS = ("x_1", "y_1", "width", "height")


@dataclass
class Row:
    """What the lists say about one image."""

    name: str
    attributes: list[int]  # 1 / -1 per attribute
    partition: int
    landmarks: list[int]  # 10 values, LANDMARK_COLUMNS order
    bbox: list[int]  # x_1, y_1, width, height


def data_folder(out: Path, layout: str) -> Path:
    """The folder that holds the lists (and toyfaces.json) for ``layout`` written at ``out``."""
    return out / "celeba" if layout == "torchvision" else out


def image_folder(out: Path, layout: str) -> Path:
    folder = data_folder(out, layout) / "img_align_celeba"
    return folder / "img_align_celeba" if layout == "kaggle" else folder


def write_lists(folder: Path, layout: str, attributes: list[str], rows: list[Row]) -> None:
    """The attribute, partition, landmark, box (and identity) lists of ``rows`` into ``folder``."""
    if layout == "kaggle":
        _csv(folder / "list_attr_celeba.csv", ["image_id", *attributes], ([r.name, *r.attributes] for r in rows))
        _csv(folder / "list_eval_partition.csv", ["image_id", "partition"], ([r.name, r.partition] for r in rows))
        _csv(folder / "list_landmarks_align_celeba.csv", ["image_id", *LANDMARK_COLUMNS],
             ([r.name, *r.landmarks] for r in rows))
        _csv(folder / "list_bbox_celeba.csv", ["image_id", *BBOX_COLUMNS], ([r.name, *r.bbox] for r in rows))
        return
    _txt(folder / "list_attr_celeba.txt", [str(len(rows)), " ".join(attributes)],
         (r.name + " " + " ".join(f"{v:>2d}" for v in r.attributes) for r in rows))
    _txt(folder / "list_eval_partition.txt", [], (f"{r.name} {r.partition}" for r in rows))
    _txt(folder / "list_landmarks_align_celeba.txt", [str(len(rows)), " ".join(LANDMARK_COLUMNS)],
         (f"{r.name:<10} " + " ".join(f"{v:>4d}" for v in r.landmarks) for r in rows))
    _txt(folder / "list_bbox_celeba.txt", [str(len(rows)), "image_id " + " ".join(BBOX_COLUMNS)],
         (f"{r.name:<10} " + " ".join(f"{v:>4d}" for v in r.bbox) for r in rows))
    _txt(folder / "identity_CelebA.txt", [], (f"{r.name} {int(Path(r.name).stem)}" for r in rows))


def _txt(path: Path, head: list[str], lines) -> None:
    path.write_text("\n".join([*head, *lines]) + "\n")


def _csv(path: Path, header: list[str], rows) -> None:
    path.write_text("\n".join([",".join(header), *(",".join(map(str, r)) for r in rows)]) + "\n")
