"""The Oxford-102 plugin on a tiny fake Oxford-102 written in tmp_path: the caption rule, both
colour modes, skipped images, the centre crop, and one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from scipy.io import savemat

from faderkit.cli import cli
from faderkit.errors import FaderkitError
from faderkit.imageio import crop_resize
from faderkit.interfaces import Attribute
from faderkit_plugins import oxford102 as plugin
from faderkit_plugins.oxford102.captions import categorical_label, mentions
from faderkit_plugins.oxford102.dataset import Oxford102

COLORS = ["red", "yellow", "white", "purple", "pink", "orange", "blue"]
PLAIN = "a flower with petals."


def caps(**counts: int) -> list[str]:
    """Ten captions, the first ``n`` of which name colour ``c`` (several colours may share a caption)."""
    out = [PLAIN] * 10
    for colour, n in counts.items():
        for j in range(n):
            out[j] = out[j][:-1] + f" and {colour} bits."
    return out


#: id -> captions (None: no caption file). Ids 1..12; valid 4, 8; test 11, 12; the rest train.
CAPTIONS = {
    1: caps(red=5),                    # exactly at the threshold: red
    2: caps(red=4),                    # one short: nothing
    3: caps(yellow=6, white=5),        # two colours; categorical picks the most mentioned (yellow)
    4: caps(pink=5, purple=5),         # a tie; categorical picks the one listed first (purple)
    5: caps(blue=3),                   # no colour qualifies: categorical skips it
    6: None,                           # no caption file: skipped in both modes
    7: ["Red, with a RED centre.", "red."] + ["this is red!"] * 3 + ["covered in hundreds of reddish dots."] * 5,
    8: caps(orange=9),
    9: caps(white=10),
    10: caps(purple=7, red=2),
    11: caps(blue=8),
    12: caps(yellow=5, pink=1),
}
SPLITS = {"trnid": [1, 2, 3, 5, 6, 7, 9, 10], "valid": [4, 8], "tstid": [11, 12]}
SIZES = {i: ((40 + 3 * i, 30 + i) if i % 2 else (28 + i, 44 + 2 * i)) for i in CAPTIONS}  # none square


def make_fake_oxford(root: Path, captions=CAPTIONS, splits=SPLITS) -> None:
    rng = np.random.default_rng(0)
    (root / "jpg").mkdir(parents=True)
    classes = {i: 1 + i % 3 for i in captions}
    for i, (w, h) in SIZES.items():
        small = rng.integers(0, 256, (h // 6 + 1, w // 6 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((w, h), Image.BICUBIC).save(root / "jpg" / f"image_{i:05d}.jpg", quality=92)
    for i, lines in captions.items():
        if lines is None:
            continue
        d = root / "text_c10" / f"class_{classes[i]:05d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"image_{i:05d}.txt").write_text("\n".join(lines) + "\n")
    savemat(root / "imagelabels.mat", {"labels": np.array([[classes[i] for i in sorted(captions)]], dtype=np.float64)})
    savemat(root / "setid.mat", {k: np.array([v], dtype=np.float64) for k, v in splits.items()})


@pytest.fixture
def fake(tmp_path):
    root = tmp_path / "oxford"
    make_fake_oxford(root)
    return root


def labels_by_id(ds) -> dict[int, list[int]]:
    return {int(i): row for name in ds.split_names
            for i, row in zip(ds.split(name).ids, ds.split(name).labels.tolist())}


def test_registered_through_the_hook():
    (entry,) = plugin.faderkit_datasets()
    assert entry.name == "oxford102" and entry.factory is Oxford102
    assert not Oxford102.can_generate()
    assert "setid.mat" in entry.summary and "5 of 10" in entry.summary


def test_the_rule_counts_captions_that_name_the_colour_as_a_whole_word():
    assert mentions(CAPTIONS[7], COLORS).tolist() == [5, 0, 0, 0, 0, 0, 0]  # not "covered", "hundreds", "reddish"
    assert mentions(caps(red=5, pink=2), COLORS).tolist() == [5, 0, 0, 0, 2, 0, 0]
    assert mentions(["red red red"] + [PLAIN] * 9, COLORS)[0] == 1  # once per caption
    assert categorical_label(np.array([0, 6, 5, 0]), 5) == 1
    assert categorical_label(np.array([0, 0, 5, 5]), 5) == 2  # a tie: the first listed
    assert categorical_label(np.array([4, 4, 0, 0]), 5) == -1


def test_binary_mode_five_of_ten_sets_a_colour_four_does_not(fake, capsys):
    ds = Oxford102(fake, image_size=16)
    assert ds.attributes == tuple(Attribute(c) for c in COLORS)
    got = labels_by_id(ds)
    col = {c: k for k, c in enumerate(COLORS)}
    assert got[1][col["red"]] == 1 and sum(got[1]) == 1
    assert got[2] == [0] * 7  # red in 4 captions only
    assert got[3] == [0, 1, 1, 0, 0, 0, 0]  # several colours in binary mode
    assert got[5] == [0] * 7  # no colour: kept, all zero
    assert got[7] == [1, 0, 0, 0, 0, 0, 0]
    assert 6 not in got and ds.skipped == {"no_captions": 1, "no_colour": 0, "unreadable": 0}
    assert ds.skipped_ids["no_captions"] == [6]
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["oxford102: using 11 of 12 images; skipped 1 without a caption file in text_c10/"]


def test_threshold_is_a_parameter(fake):
    got = labels_by_id(Oxford102(fake, image_size=16, threshold=4, attributes=["red"]))
    assert got[2] == [1] and got[1] == [1] and got[10] == [0]
    got = labels_by_id(Oxford102(fake, image_size=16, threshold=6, attributes=["red"]))
    assert got[1] == [0]


def test_categorical_mode_one_colour_per_image(fake, capsys):
    ds = Oxford102(fake, image_size=16, color_mode="categorical")
    assert ds.attributes == (Attribute("color", tuple(COLORS)),)
    got = {i: COLORS[v[0]] for i, v in labels_by_id(ds).items()}
    assert got == {1: "red", 3: "yellow", 4: "purple", 7: "red", 8: "orange", 9: "white", 10: "purple",
                   11: "blue", 12: "yellow"}  # 2 and 5 name no colour 5 times, 6 has no captions
    assert ds.skipped == {"no_captions": 1, "no_colour": 2, "unreadable": 0} and ds.skipped_ids["no_colour"] == [2, 5]
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == ("oxford102: using 9 of 12 images; skipped 1 without a caption file in text_c10/ and 2 whose "
                    "captions name no colour of red,yellow,white,purple,pink,orange,blue at least 5 times")
    train = ds.split("train")
    assert train.ids.tolist() == [1, 3, 7, 9, 10] and train.files[0] == "image_00001.jpg"
    assert train.labels.dtype == torch.int64 and train.labels.shape == (5, 1)


def open_through_faderkit(root, image_size=16, attributes=None, **params):
    """The dataset as faderkit opens it for a recipe: ``params`` checked against its params model."""
    from faderkit.plugins import registries

    return registries().datasets.create("oxford102", root, image_size=image_size, attributes=attributes,
                                        params=params)


def test_vocabulary_is_a_parameter_and_decides_the_values(fake):
    ds = open_through_faderkit(fake, color_mode="categorical", colors=["Pink", "purple", "yellow"])
    assert ds.attributes == (Attribute("color", ("pink", "purple", "yellow")),)
    got = {i: ds.colors[v[0]] for i, v in labels_by_id(ds).items()}
    assert got == {3: "yellow", 4: "pink", 10: "purple", 12: "yellow"}  # the tie now goes to pink


def test_binary_attribute_subset_in_the_order_asked(fake):
    ds = Oxford102(fake, image_size=16, attributes=["blue", "red"])
    assert [a.name for a in ds.attributes] == ["blue", "red"]
    assert labels_by_id(ds)[11] == [1, 0] and labels_by_id(ds)[1] == [0, 1]


def test_images_are_a_centre_square_resized(fake):
    ds = Oxford102(fake, image_size=24, color_mode="categorical")
    test = ds.split("test")
    batch = test.images(np.array([1, 0]))
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 24, 24)
    for row, i in zip(batch, (12, 11)):
        with Image.open(fake / "jpg" / f"image_{i:05d}.jpg") as im:
            assert im.width != im.height
            assert np.array_equal(row.numpy(), crop_resize(im, 24).transpose(2, 0, 1))
    assert ds.preprocess_spec() == {"native_size": None, "crop_box": None}
    again = Oxford102(fake, image_size=24, color_mode="binary")  # the cache does not depend on the colours
    assert len(list((fake / ".faderkit-cache").glob("*.u8"))) == 1
    assert torch.equal(again.split("test").images(np.array([1, 0])), batch)


def _rewrite_captions(root: Path, i: int, fn) -> Path:
    (path,) = root.glob(f"text_c10/*/image_{i:05d}.txt")
    path.write_text(fn(path.read_text()))
    return path


def _resave(root: Path, name: str, drop: str) -> None:
    from scipy.io import loadmat

    mat = {k: v for k, v in loadmat(root / name).items() if not k.startswith("__") and k != drop}
    savemat(root / name, mat)


#: case: (damage, the file the message must name, a fragment it must hold)
BROKEN = {
    "nine captions": (lambda r: _rewrite_captions(r, 3, lambda t: "\n".join(t.splitlines()[:9])),
                      "image_00003.txt", "has 9 lines; expected 10"),
    "eleven captions": (lambda r: _rewrite_captions(r, 9, lambda t: t + "one more.\n"),
                        "image_00009.txt", "has 11 lines"),
    "blank line inside": (lambda r: _rewrite_captions(r, 4, lambda t: t.replace("\n", "\n\n", 1)),
                          "image_00004.txt", "has 11 lines"),
    "labels missing": (lambda r: savemat(r / "imagelabels.mat", {"lables": np.ones((1, 12))}),
                       "imagelabels.mat", "no variable 'labels' (it holds: lables)"),
    "tstid missing": (lambda r: _resave(r, "setid.mat", "tstid"), "setid.mat", "no variable 'tstid'"),
    "not a mat file": (lambda r: (r / "setid.mat").write_text("trnid = [1 2 3]"), "setid.mat", "cannot read"),
    "image missing": (lambda r: (r / "jpg" / "image_00008.jpg").unlink(), "image_00008.jpg", "valid lists image id 8"),
    "id beyond labels": (lambda r: savemat(r / "setid.mat", {**{k: np.array([v]) for k, v in SPLITS.items()},
                                                              "tstid": np.array([[11, 13]])}),
                         "setid.mat", "tstid lists image id 13, but"),
    "id in two splits": (lambda r: savemat(r / "setid.mat", {**{k: np.array([v]) for k, v in SPLITS.items()},
                                                              "tstid": np.array([[11, 1]])}),
                         "setid.mat", "image id 1 is listed in both trnid and tstid"),
    "no captions folder": (lambda r: __import__("shutil").rmtree(r / "text_c10"), "text_c10", "lacks"),
    "no labels file": (lambda r: (r / "imagelabels.mat").unlink(), "imagelabels.mat", "lacks"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_raise_one_line_errors_naming_them(fake, case):
    damage, filename, fragment = BROKEN[case]
    damage(fake)
    with pytest.raises(FaderkitError) as err:
        Oxford102(fake, image_size=16)
    msg = str(err.value)
    assert filename in msg and fragment in msg and "\n" not in msg


@pytest.mark.parametrize("params, fragment", [
    ({"colors": ["red", "light blue"]}, "params.colors.1: colour 'light blue' is not a plain word"),
    ({"colors": ["red", "blue2"]}, "params.colors.1: colour 'blue2' is not a plain word"),
    ({"colors": ["red", 3]}, "params.colors.1: Input should be a valid string (got 3)"),
    ({"colors": ["red", "Red"]}, "params.colors: colour 'red' is listed twice"),
    ({"colors": []}, "params.colors: expected non-empty list of text, got []"),
    ({"colors": "red, sky blue"}, "params.colors.1: colour 'sky blue' is not a plain word"),
    ({"colors": ["red"], "color_mode": "categorical"}, "categorical color_mode needs at least 2 colors"),
    ({"color_mode": "onehot"}, "params.color_mode: 'onehot' is not a choice; choose one of: binary, categorical"),
    ({"threshold": 0}, "params.threshold: expected int in [1, 10], got 0"),
    ({"threshold": 11}, "params.threshold: expected int in [1, 10], got 11"),
    ({"threshold": 2.5}, "params.threshold: expected int in [1, 10], got 2.5"),
    ({"colour_mode": "binary"}, "params.colour_mode: unknown key (accepted: cache_dir, unreadable, colors, "
                                "threshold, color_mode)"),
    ({"unreadable": "ignore"}, "params.unreadable: 'ignore' is not a choice; choose one of: stop, skip"),
])
def test_bad_parameters_are_one_line_errors(fake, params, fragment):
    with pytest.raises(FaderkitError) as err:
        open_through_faderkit(fake, **params)
    assert str(err.value).startswith("dataset 'oxford102': ")
    assert fragment in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"attributes": ["red", "green"]}, "no attribute 'green': binary color_mode has one attribute per colour"),
    ({"attributes": ["red"], "color_mode": "categorical"}, "no attribute 'red': categorical color_mode"),
    ({"image_size": 0}, "image_size"),
])
def test_bad_attributes_and_sizes_are_one_line_errors(fake, kwargs, fragment):
    with pytest.raises(FaderkitError) as err:
        Oxford102(fake, **{"image_size": 16, **kwargs})
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_unknown_split_and_an_emptied_split(fake):
    with pytest.raises(FaderkitError, match="train, valid, test"):
        Oxford102(fake, image_size=16).split("val")
    only_blue = {i: (caps(blue=6) if i != 8 and i != 4 else caps()) for i in CAPTIONS}
    root = fake.parent / "blue"
    make_fake_oxford(root, only_blue)
    ds = Oxford102(root, image_size=16, color_mode="categorical", colors=["blue", "red"])
    assert len(ds.split("train")) == 8
    with pytest.raises(FaderkitError, match=r"the valid split \(valid in setid.mat\) has no images left"):
        ds.split("valid")


def test_cli_train_reports_a_bad_colour_in_one_line(fake, tmp_path):
    recipe = {"data": {"name": "oxford102", "root": str(fake), "image_size": 16,
                       "params": {"colors": ["red", "sky blue"]}},
              "model": {"n_layers": 3}, "train": {"schedule": {"steps": 1}}}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(cli, ["train", str(path), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        f"Error: invalid recipe {path}: data.params.colors.1: colour 'sky blue' is not a plain word "
        "(letters a-z only, e.g. 'purple'; multi-word colours cannot be matched)")
