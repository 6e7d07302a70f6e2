"""CelebA as people download it: the three layouts written by the toy generator and read back end to end,
mixed-up copies read or refused in one line naming the file, and the aligned-landmark template."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faderkit.cli import cli
from faderkit.errors import FaderkitError
from faderkit_plugins.celeba.dataset import CelebA
from faderkit_plugins.celeba.landmarks import PUBLISHED, PUBLISHED_MEANS
from faderkit_plugins.toyfaces import generate as gen
from faderkit_plugins.toyfaces.dataset import ToyFaces
from faderkit_plugins.toyfaces.render import ATTRIBUTES, five_landmarks

COUNT, SEED = 20, 3
LAYOUTS = ("original", "kaggle", "torchvision")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Each layout written by the real command: ``faderkit data toyfaces OUT --layout NAME``."""
    base = tmp_path_factory.mktemp("layouts")
    out = {}
    for layout in LAYOUTS:
        result = CliRunner().invoke(cli, ["data", "toyfaces", str(base / layout), "-n", str(COUNT), "--seed",
                                          str(SEED), "--layout", layout])
        assert result.exit_code == 0, result.output
        out[layout] = base / layout
    return out


@pytest.fixture
def copy(written, tmp_path):
    """A private copy of one written layout that a test may change."""
    def make(layout: str) -> Path:
        return Path(shutil.copytree(written[layout], tmp_path / layout))
    return make


def true_mean_landmarks() -> dict[str, np.ndarray]:
    marks = [five_landmarks(*gen.identity_and_attributes(SEED, i)) for i in range(1, COUNT + 1)]
    return {k: np.mean([m[k] for m in marks], axis=0) for k in marks[0]}


def reference(written) -> CelebA:
    return CelebA(written["original"], image_size=16)


def assert_same_dataset(ds: CelebA, ref: CelebA) -> None:
    assert [a.name for a in ds.attributes] == list(ATTRIBUTES)
    assert ds.files == ref.files == [gen.file_name(i) for i in range(1, COUNT + 1)]
    for name in ds.split_names:
        a, b = ds.split(name), ref.split(name)
        assert a.files == b.files and len(a) > 0
        assert np.array_equal(a.labels.numpy(), b.labels.numpy())
        idx = np.arange(len(a))
        assert np.array_equal(a.images(idx).numpy(), b.images(idx).numpy())


def first_error_line(fn) -> str:
    with pytest.raises(FaderkitError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------- the three layouts, end to end

def test_the_generator_writes_each_layout_where_its_download_puts_the_files(written):
    o, k, t = written["original"], written["kaggle"], written["torchvision"] / "celeba"
    for folder in (o, t):
        for f in ("list_attr_celeba.txt", "list_eval_partition.txt", "list_landmarks_align_celeba.txt",
                  "list_bbox_celeba.txt", "identity_CelebA.txt"):
            assert (folder / f).is_file(), folder / f
        assert len(list((folder / "img_align_celeba").glob("*.jpg"))) == COUNT
    for f in ("list_attr_celeba.csv", "list_eval_partition.csv", "list_landmarks_align_celeba.csv",
              "list_bbox_celeba.csv"):
        assert (k / f).is_file(), f
    assert len(list((k / "img_align_celeba" / "img_align_celeba").glob("*.jpg"))) == COUNT
    assert not list((k / "img_align_celeba").glob("*.jpg"))
    assert (k / "list_attr_celeba.csv").read_text().splitlines()[0] == "image_id," + ",".join(ATTRIBUTES)
    assert (k / "list_eval_partition.csv").read_text().splitlines()[:2] == ["image_id,partition", "000001.jpg,0"]
    header = (o / "list_landmarks_align_celeba.txt").read_text().splitlines()[1].split()
    assert header == ["lefteye_x", "lefteye_y", "righteye_x", "righteye_y", "nose_x", "nose_y",
                      "leftmouth_x", "leftmouth_y", "rightmouth_x", "rightmouth_y"]
    # the same faces in every layout, byte for byte
    for i in (1, COUNT):
        name = gen.file_name(i)
        assert ((o / "img_align_celeba" / name).read_bytes() == (t / "img_align_celeba" / name).read_bytes()
                == (k / "img_align_celeba" / "img_align_celeba" / name).read_bytes())


@pytest.mark.parametrize("layout,sub", [("original", ""), ("kaggle", ""), ("torchvision", ""),
                                        ("torchvision", "celeba")])
def test_each_layout_reads_as_the_same_dataset(written, layout, sub):
    ds = CelebA(written[layout] / sub if sub else written[layout], image_size=16)
    expected = layout if not sub else "original"  # torchvision's celeba/ holds the original layout
    assert ds.layout.name == expected and f"{expected} layout" in repr(ds)
    assert_same_dataset(ds, reference(written))
    assert ds.landmark_source.endswith("list_landmarks_align_celeba." + ("csv" if layout == "kaggle" else "txt"))


def test_each_layout_is_found_from_its_parent_folder(written, tmp_path):
    for layout in ("original", "kaggle"):
        parent = tmp_path / f"parent-{layout}"
        shutil.copytree(written[layout], parent / "CelebA-download")
        ds = CelebA(parent, image_size=16)
        assert ds.layout.folder == parent / "CelebA-download" and ds.layout.name == layout
        assert_same_dataset(ds, reference(written))


def test_the_template_is_the_mean_of_the_true_landmarks(written):
    truth = true_mean_landmarks()
    templates = [CelebA(written[layout], image_size=16).landmark_template() for layout in LAYOUTS]
    assert templates[0] == templates[1] == templates[2]
    assert set(templates[0]) == {"left_eye", "right_eye", "nose", "mouth_left", "mouth_right"}
    for name, (x, y) in templates[0].items():
        assert abs(x - truth[name][0]) <= 0.5 and abs(y - truth[name][1]) <= 0.5, (name, (x, y), truth[name])
    assert templates[0]["left_eye"][0] < templates[0]["right_eye"][0]  # left = the image's left


def test_without_a_landmark_file_the_published_means_are_used_and_said(copy):
    root = copy("original")
    (root / "list_landmarks_align_celeba.txt").unlink()
    ds = CelebA(root, image_size=16)
    assert ds.landmark_template() == PUBLISHED_MEANS and ds.landmark_source == PUBLISHED
    assert "landmarks: published means" in repr(ds)


def test_toyfaces_renders_counterfactuals_from_every_layout(written):
    for layout in LAYOUTS:
        ds = ToyFaces(written[layout], image_size=16)
        img = ds.render("test", 0, {"Smiling": 1.0})
        assert tuple(img.shape) == (3, 16, 16)


def test_the_google_drive_tree_is_read(written, tmp_path):
    """The authors' Drive keeps the lists in Anno/ and Eval/, the images in Img/."""
    o, root = written["original"], tmp_path / "CelebA"
    shutil.copytree(o / "img_align_celeba", root / "Img" / "img_align_celeba")
    (root / "Anno").mkdir()
    (root / "Eval").mkdir()
    for f in ("list_attr_celeba.txt", "list_landmarks_align_celeba.txt"):
        shutil.copy(o / f, root / "Anno" / f)
    shutil.copy(o / "list_eval_partition.txt", root / "Eval" / "list_eval_partition.txt")
    ds = CelebA(root, image_size=16)
    assert ds.layout.landmarks == root / "Anno" / "list_landmarks_align_celeba.txt"
    assert_same_dataset(ds, reference(written))


# ---------------------------------------------------------------- mixed-up copies that are read

def _rewrite(path: Path, fn) -> None:
    path.write_bytes(fn(path.read_bytes()))


def test_csv_labels_beside_a_txt_partition(written, copy):
    root = copy("kaggle")
    (root / "list_eval_partition.csv").unlink()
    shutil.copy(written["original"] / "list_eval_partition.txt", root)
    ds = CelebA(root, image_size=16)
    assert ds.layout.attributes.name == "list_attr_celeba.csv" and ds.layout.partition.name == "list_eval_partition.txt"
    assert_same_dataset(ds, reference(written))


def test_kaggle_lists_with_a_flat_image_folder(written, copy):
    root = copy("kaggle")
    nested = root / "img_align_celeba" / "img_align_celeba"
    for f in nested.iterdir():
        f.rename(root / "img_align_celeba" / f.name)
    nested.rmdir()
    ds = CelebA(root, image_size=16)
    assert ds.layout.images == root / "img_align_celeba"
    assert_same_dataset(ds, reference(written))


@pytest.mark.parametrize("change", ["bom", "crlf", "bom+crlf", "spaces in the header", "quoted cells",
                                    "trailing commas"])
def test_csv_variants_are_read(written, copy, change):
    root = copy("kaggle")
    for f in root.glob("*.csv"):
        if "bom" in change:
            _rewrite(f, lambda b: b"\xef\xbb\xbf" + b)
        if "crlf" in change:
            _rewrite(f, lambda b: b.replace(b"\n", b"\r\n"))
        if change == "spaces in the header":
            _rewrite(f, lambda b: b"\n".join([b.split(b"\n", 1)[0].replace(b",", b" , "), b.split(b"\n", 1)[1]]))
        if change == "quoted cells":
            _rewrite(f, lambda b: b"\n".join(b",".join(b'"' + c + b'"' for c in line.split(b","))
                                             for line in b.rstrip().split(b"\n")) + b"\n")
        if change == "trailing commas":
            _rewrite(f, lambda b: b.rstrip().replace(b"\n", b",\n") + b",\n")
    ds = CelebA(root, image_size=16)
    assert_same_dataset(ds, reference(written))
    assert ds.landmark_template() == reference(written).landmark_template()


@pytest.mark.parametrize("change", ["bom", "crlf"])
def test_txt_variants_are_read(written, copy, change):
    root = copy("original")
    for f in root.glob("*.txt"):
        _rewrite(f, (lambda b: b"\xef\xbb\xbf" + b) if change == "bom" else (lambda b: b.replace(b"\n", b"\r\n")))
    ds = CelebA(root, image_size=16)
    assert_same_dataset(ds, reference(written))
    assert ds.landmark_template() == reference(written).landmark_template()


def test_landmark_columns_in_another_order_are_matched_by_name(written, copy):
    root = copy("kaggle")
    path = root / "list_landmarks_align_celeba.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    path.write_text("\n".join(",".join([r[0], *r[1:][::-1]]) for r in rows) + "\n")
    assert CelebA(root, image_size=16).landmark_template() == reference(written).landmark_template()


# ---------------------------------------------------------------- refused in one line naming the file

def test_a_wrong_root_names_what_was_looked_for_in_each_layout(tmp_path):
    (tmp_path / "photos").mkdir()
    message = first_error_line(lambda: CelebA(tmp_path, image_size=16))
    for expected in ("original layout (img_align_celeba/, list_attr_celeba.txt, list_eval_partition.txt)",
                     "Kaggle layout (img_align_celeba/img_align_celeba/, list_attr_celeba.csv, list_eval_partition.csv)",
                     "torchvision's (celeba/ holding the original files)", str(tmp_path)):
        assert expected in message, message


def test_an_unzipped_download_is_pointed_at(tmp_path):
    (tmp_path / "img_align_celeba.zip").write_bytes(b"PK")
    assert "found img_align_celeba.zip: unzip it there first" in first_error_line(lambda: CelebA(tmp_path))


def test_several_copies_under_one_parent_are_named(written, tmp_path):
    shutil.copytree(written["original"], tmp_path / "a")
    shutil.copytree(written["kaggle"], tmp_path / "b")
    assert re.search(r"several CelebA folders \(a, b\)", first_error_line(lambda: CelebA(tmp_path)))


def test_a_missing_nested_folder_names_the_first_missing_image(copy):
    root = copy("kaggle")
    shutil.rmtree(root / "img_align_celeba" / "img_align_celeba")
    message = first_error_line(lambda: CelebA(root, image_size=16).split("train"))
    assert re.search(r"000001\.jpg is listed in list_attr_celeba\.csv but missing from .*img_align_celeba", message)


def test_a_kaggle_copy_without_its_partition_says_which_file(copy):
    root = copy("kaggle")
    (root / "list_eval_partition.csv").unlink()
    message = first_error_line(lambda: CelebA(root))
    assert "(kaggle layout) lacks list_eval_partition.txt (or .csv)" in message and str(root) in message


@pytest.mark.parametrize("file,edit,expected", [
    ("list_attr_celeba.csv", lambda t: t.replace(",", ";"), r"list_attr_celeba\.csv line 1: .*separated by ';'"),
    ("list_attr_celeba.csv", lambda t: t.split("\n", 1)[1], r"list_attr_celeba\.csv line 1: .*found a data row"),
    ("list_attr_celeba.csv", lambda t: t.replace("000003.jpg,-1", "000003.jpg,", 1).replace("000003.jpg,1", "000003.jpg,", 1),
     r"list_attr_celeba\.csv line 4: expected a file name and 5 values, found 4"),
    ("list_attr_celeba.csv", lambda t: t.replace("000002.jpg,1", "000002.jpg,yes").replace("000002.jpg,-1", "000002.jpg,yes"),
     r"list_attr_celeba\.csv line 3: Smiling is 'yes'; values must be 1 or -1"),
    ("list_attr_celeba.csv", lambda t: t.replace("image_id,Smiling,", "image_id,,"), r"line 1: column 2 of the header"),
    ("list_eval_partition.csv", lambda t: t.replace("000005.jpg,0", "000005.jpg,train"),
     r"list_eval_partition\.csv line 6: partition must be 0 \(train\)"),
    ("list_eval_partition.csv", lambda t: t.replace("image_id,partition", "image_id,partition,extra"),
     r"list_eval_partition\.csv line 1: expected the two columns"),
])
def test_broken_csv_lists_are_refused_naming_file_and_line(copy, file, edit, expected):
    root = copy("kaggle")
    (root / file).write_text(edit((root / file).read_text()))
    assert re.search(expected, first_error_line(lambda: CelebA(root, image_size=16)))


@pytest.mark.parametrize("layout,edit,expected", [
    ("kaggle", lambda t: t.replace("lefteye_x", "left_eye_x"), r"\.csv line 1: expected the columns lefteye_x"),
    ("original", lambda t: t.replace("lefteye_x", "eye"), r"\.txt line 2: expected the columns lefteye_x"),
    ("original", lambda t: t.replace("000004.jpg ", "000004.jpg abc "),
     r"\.txt line 6: expected a file name and 10 coordinates, found 11"),
    ("kaggle", lambda t: re.sub(r"000007\.jpg,\d+", "000007.jpg,x", t), r"\.csv line 8: lefteye_x is 'x'"),
    ("original", lambda t: "7\n" + t.split("\n", 1)[1], r"\.txt: line 1 says 7 images but 20"),
])
def test_a_broken_landmark_file_is_refused_naming_file_and_line(copy, layout, edit, expected):
    root = copy(layout)
    ds = CelebA(root, image_size=16)  # the labels are fine: only the template needs the file
    path = ds.layout.landmarks
    path.write_text(edit(path.read_text()))
    message = first_error_line(ds.landmark_template)
    assert "list_landmarks_align_celeba" in message and re.search(expected, message), message


# ---------------------------------------------------------------- the command

def test_data_command_refuses_an_unknown_layout(tmp_path):
    result = CliRunner().invoke(cli, ["data", "toyfaces", str(tmp_path / "x"), "-n", "10", "--layout", "zip"])
    assert result.exit_code == 2
    assert "has no layout 'zip'; choose one of: original, kaggle, torchvision" in result.stderr
    assert not (tmp_path / "x").exists()


def test_data_command_refuses_a_layout_for_a_single_layout_dataset(tmp_path):
    result = CliRunner().invoke(cli, ["data", "toyflowers", str(tmp_path / "x"), "-n", "30", "--layout", "kaggle"])
    assert result.exit_code == 2 and "writes only one" in result.stderr
    assert not (tmp_path / "x").exists()
