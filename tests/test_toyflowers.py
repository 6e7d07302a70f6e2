"""Toy flowers: a deterministic generator writing the real Oxford-102 layout with noisy captions,
loaded by the Oxford-102 reader, rendering ground truth in other colours, and a categorical colour
fader trained and used by `faderkit edit --set color=...` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from scipy.io import loadmat

from faderkit.cli import cli
from faderkit.errors import FaderkitError
from faderkit.interfaces import Attribute
from faderkit.recipe import validate
from faderkit_plugins.oxford102.captions import mentions
from faderkit_plugins.toyflowers import generate as gen
from faderkit_plugins.toyflowers.dataset import ToyFlowers
from faderkit_plugins.toyflowers.render import COLORS, render, sample_identity

from conftest import tiny_recipe


@pytest.fixture(scope="module")
def flowers(tmp_path_factory) -> Path:
    """40 toy flowers (32 train / 4 valid / 4 test)."""
    root = tmp_path_factory.mktemp("flowers") / "toy"
    gen.generate(root, 40, seed=0, progress=False)
    return root


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- generation

def test_generate_is_deterministic_and_atomic(tmp_path):
    a = tree(gen.generate(tmp_path / "a", 12, seed=5, progress=False))
    b = tree(gen.generate(tmp_path / "b", 12, seed=5, progress=False))
    c = tree(gen.generate(tmp_path / "c", 12, seed=6, progress=False))
    assert a == b  # .mat files included: their header carries no timestamp
    assert a["jpg/image_00001.jpg"] != c["jpg/image_00001.jpg"]
    assert a["jpg/image_00001.jpg"] != a["jpg/image_00002.jpg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"
    assert gen.flower(5, 3)[:2] == gen.flower(5, 3)[:2] and gen.flower(5, 3)[2] == gen.flower(5, 3)[2]


def test_generate_writes_the_oxford102_layout(flowers):
    labels = loadmat(flowers / "imagelabels.mat")["labels"]
    assert labels.shape == (1, 40) and set(labels.ravel()) <= set(range(1, 17))
    setid = loadmat(flowers / "setid.mat")
    sizes = {k: setid[k].shape for k in ("trnid", "valid", "tstid")}
    assert sizes == {"trnid": (1, 32), "valid": (1, 4), "tstid": (1, 4)}
    ids = np.concatenate([setid[k].ravel() for k in ("trnid", "valid", "tstid")])
    assert sorted(ids.tolist()) == list(range(1, 41))
    for i in (1, 17, 40):
        with Image.open(flowers / "jpg" / f"image_{i:05d}.jpg") as im:
            assert im.format == "JPEG" and im.width != im.height
        identity, colour, captions = gen.flower(0, i)
        assert int(labels[0, i - 1]) == identity.species
        path = flowers / "text_c10" / f"class_{identity.species:05d}" / f"image_{i:05d}.txt"
        assert path.read_text().splitlines() == captions and len(captions) == 10
    meta = json.loads((flowers / "toyflowers.json").read_text())
    assert meta["seed"] == 0 and meta["count"] == 40 and meta["colors"] == list(COLORS)


def test_captions_disagree_but_the_five_of_ten_rule_recovers_the_colour():
    true_counts, other_max, any_mention_ambiguous = [], [], 0
    for i in range(1, 301):
        _, colour, captions = gen.flower(1, i)
        counts = mentions(captions, COLORS)
        k = COLORS.index(colour)
        true_counts.append(counts[k])
        other_max.append(np.delete(counts, k).max())
        any_mention_ambiguous += int((counts > 0).sum() > 1)
    assert set(true_counts) == {6, 7, 8, 9}  # 6..9 captions name the true colour
    assert max(other_max) == 4  # another colour reaches 4 (so a threshold of 4 would be wrong), never 5
    assert any_mention_ambiguous > 150  # "any caption names it" would give most flowers several colours


def test_generate_refuses_bad_arguments_and_a_full_folder(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("keep")
    with pytest.raises(FaderkitError, match="not empty"):
        gen.generate(full, 5, progress=False)
    with pytest.raises(FaderkitError, match="at least 3"):
        gen.generate(tmp_path / "x", 2, progress=False)
    with pytest.raises(FaderkitError, match="seed"):
        gen.generate(tmp_path / "x", 5, seed=-1, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_render_changes_only_the_petals():
    idt = sample_identity(np.random.default_rng(3))
    red, yellow = render(idt, "red"), render(idt, "yellow")
    assert red.shape == (idt.height, idt.width, 3) and red.dtype == np.uint8
    assert np.array_equal(red, render(idt, "red"))
    changed = np.abs(red.astype(int) - yellow.astype(int)).sum(-1) > 0
    assert 0.05 < changed.mean() < 0.6
    ys, xs = np.nonzero(changed)
    reach = np.hypot(xs - idt.cx, ys - idt.cy).max()
    assert reach <= idt.radius + 2  # nothing outside the petals' reach changes
    with pytest.raises(FaderkitError, match="no colour 'green'"):
        render(idt, "green")


# ---------------------------------------------------------------- dataset

def test_labels_from_captions_match_the_painted_colour(flowers):
    ds = ToyFlowers(flowers, image_size=32, color_mode="categorical")
    assert ds.attributes == (Attribute("color", COLORS),) and ds.skipped == {"no_captions": 0, "no_colour": 0, "unreadable": 0}
    for name in ds.split_names:
        split = ds.split(name)
        assert [COLORS[v] for v in split.labels[:, 0].tolist()] == [ds.true_color(name, k) for k in range(len(split))]
    binary = ToyFlowers(flowers, image_size=32)
    assert [a.name for a in binary.attributes] == list(COLORS)
    assert (binary.split("train").labels.sum(1) == 1).all()  # exactly one colour per flower
    assert torch.equal(binary.split("train").labels.argmax(1), ds.split("train").labels[:, 0])


def test_render_gives_the_same_flower_in_another_colour(flowers):
    ds = ToyFlowers(flowers, image_size=32, color_mode="categorical")
    stored = ds.split("test").images(np.array([0]))[0]
    same = ds.render("test", 0, {})
    assert same.shape == (3, 32, 32) and same.dtype == torch.uint8
    assert (same.int() - stored.int()).abs().float().mean() < 4  # JPEG noise only
    own = ds.true_color("test", 0)
    other = "yellow" if own != "yellow" else "blue"
    recoloured = ds.render("test", 0, {"color": other})
    assert (recoloured.int() - same.int()).abs().float().mean() > 3
    assert torch.equal(ds.render("test", 0, {other: 1}), recoloured)
    with pytest.raises(FaderkitError, match="no colour 'green'"):
        ds.render("test", 0, {"color": "green"})
    with pytest.raises(FaderkitError, match="one petal colour"):
        ds.render("test", 0, {"red": 1, "blue": 1})
    with pytest.raises(FaderkitError, match="without a colour"):
        ds.render("test", 0, {own: 0})
    with pytest.raises(FaderkitError, match="out of range"):
        ds.render("test", 4, {})


def test_generated_on_first_use_then_read_as_is(tmp_path, capsys):
    root = tmp_path / "new"
    ds = ToyFlowers(root, image_size=16, count=10, seed=2)
    assert "generating 10" in capsys.readouterr().err
    assert (len(ds.split("train")), len(ds.split("valid")), len(ds.split("test"))) == (8, 1, 1)
    again = ToyFlowers(root, image_size=16, count=99, seed=7)
    assert "generating" not in capsys.readouterr().err and len(again.ids) == 10
    from faderkit.plugins import registries

    with pytest.raises(FaderkitError, match=r"params\.shade: unknown key \(accepted: .*color_mode, count, seed\)"):
        registries().datasets.create("toyflowers", root, params={"shade": 1})


def test_cli_data_writes_toy_flowers(tmp_path):
    result = CliRunner().invoke(cli, ["data", "toyflowers", str(tmp_path / "out"), "--count", "5", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert len(list((tmp_path / "out" / "jpg").iterdir())) == 5


# ---------------------------------------------------------------- a categorical colour fader, end to end

def flower_recipe(root, **train) -> dict:
    r = tiny_recipe(root, **train)
    r["data"] = {"name": "toyflowers", "root": str(root), "image_size": 32, "params": {"color_mode": "categorical"}}
    return r


def test_categorical_colour_edit_end_to_end(flowers, tmp_path):
    from faderkit import load
    from faderkit.train import train

    best = train(validate(flower_recipe(flowers)), tmp_path / "run", progress=False, log=lambda m: None)
    model = load(best)
    assert model.attributes == (Attribute("color", COLORS),)
    image = flowers / "jpg" / "image_00001.jpg"
    out = tmp_path / "edit.png"
    result = CliRunner().invoke(cli, ["edit", str(image), "-c", str(best), "--set", "color=yellow", "--compare",
                                      "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(image) as src, Image.open(out) as im:  # input | edit, at the input's own size
        assert im.size == (2 * src.width + 2, src.height)
    # another value changes the decoded image: the colour code reaches the decoder
    x = model.prepare(image)
    yellow, blue = model.edit_tensor(x, {"color": "yellow"}), model.edit_tensor(x, {"color": "blue"})
    assert not torch.equal(yellow, blue)
    bad = CliRunner().invoke(cli, ["edit", str(image), "-c", str(best), "--set", "color=green", "-o", str(out)])
    assert bad.exit_code == 2
    assert "color=green: not one of its values (red, yellow, white, purple, pink, orange, blue)" in bad.output
