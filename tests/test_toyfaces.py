"""Toy faces: deterministic renders whose attribute cues are local, monotone and composable,
written in the real CelebA layout, and loadable as a dataset that renders counterfactuals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from faderkit.errors import FaderkitError
from faderkit_plugins.toyfaces import generate as gen
from faderkit_plugins.toyfaces.render import (
    ATTRIBUTES,
    HEIGHT,
    WIDTH,
    landmarks,
    render,
    sample_attributes,
    sample_identity,
)

IDENTITY = sample_identity(np.random.default_rng(11))


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel absolute difference summed over channels, (H, W)."""
    return np.abs(a.astype(np.int32) - b.astype(np.int32)).sum(-1)


def box_mask(x0, y0, x1, y1) -> np.ndarray:
    m = np.zeros((HEIGHT, WIDTH), bool)
    m[max(0, int(y0)) : int(np.ceil(y1)), max(0, int(x0)) : int(np.ceil(x1))] = True
    return m


def cue_region(name: str, idt) -> np.ndarray:
    """Where each cue may change pixels (native frame), from the identity's landmarks."""
    lm = landmarks(idt)
    cx, _ = lm["centre"]
    mx, my = lm["mouth"]
    eye_y = lm["left_eye"][1]
    half = idt.head_w * idt.scale
    if name == "Smiling":  # mouth, smile lines and cheeks
        return box_mask(cx - half, eye_y + 12, cx + half, my + 26)
    if name == "Mouth_Slightly_Open":
        return box_mask(mx - 26, my - 14, mx + 26, my + 26)
    if name == "Eyeglasses":
        return box_mask(cx - half - 1, eye_y - 17, cx + half + 1, eye_y + 14)
    if name == "Bangs":
        return box_mask(cx - half, 0, cx + half, lm["brows"][1] + 8)
    raise KeyError(name)


# ---------------------------------------------------------------- rendering


def test_render_is_deterministic_and_shaped_like_celeba():
    values = {"Smiling": 0.3, "Bangs": 1.0}
    a, b = render(IDENTITY, values), render(IDENTITY, dict(values))
    assert a.shape == (218, 178, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    other, _ = gen.identity_and_attributes(0, 2)
    assert diff(render(other, values), a).mean() > 5


def test_identity_and_attributes_depend_only_on_seed_and_index():
    assert gen.identity_and_attributes(3, 17) == gen.identity_and_attributes(3, 17)
    assert gen.identity_and_attributes(3, 17)[0] != gen.identity_and_attributes(3, 18)[0]
    assert gen.identity_and_attributes(3, 17)[0] != gen.identity_and_attributes(4, 17)[0]


@pytest.mark.parametrize("base", ["none", "all others"])
@pytest.mark.parametrize("name", ["Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs"])
def test_cue_is_local_and_grows_with_intensity(name, base):
    others = {a: (1.0 if base == "all others" else 0.0) for a in ATTRIBUTES if a != name}
    ref = render(IDENTITY, {**others, name: 0.0})
    changes = [diff(render(IDENTITY, {**others, name: v}), ref) for v in (0.25, 0.5, 1.0)]
    means = [c.mean() for c in changes]
    assert means[0] > 0 and means[0] < means[1] < means[2], means
    region = cue_region(name, IDENTITY)
    for c in changes:
        assert c[region].sum() >= 0.97 * c.sum(), f"{name} changed pixels outside its region"
    assert means[2] > 1.0, f"{name} at 1 changes too little to learn"


def test_male_shortens_hair_thickens_brows_and_shades_the_jaw():
    lm = landmarks(IDENTITY)
    cx, cy = lm["centre"]
    half, s = IDENTITY.head_w * IDENTITY.scale, IDENTITY.scale
    ref = render(IDENTITY, {"Male": 0.0})
    changes = [diff(render(IDENTITY, {"Male": v}), ref) for v in (0.25, 0.5, 1.0)]
    means = [c.mean() for c in changes]
    assert means[0] < means[1] < means[2], means
    full = changes[-1]
    hair_beside_neck = box_mask(cx - half - 12 * s, cy + 20 * s, cx - half - 2 * s, cy + 45 * s)
    brows = box_mask(lm["left_eye"][0] - 8, lm["brows"][1] - 6, lm["left_eye"][0] + 8, lm["brows"][1] - 2)
    jaw = box_mask(cx - 10, lm["chin"][1] - 12, cx + 10, lm["chin"][1] - 4)
    for region_name, region in (("hair", hair_beside_neck), ("brows", brows), ("jaw", jaw)):
        assert full[region].mean() > 30, f"Male does not change the {region_name}"
    eyes = box_mask(lm["left_eye"][0] - 4, lm["left_eye"][1] - 2, lm["left_eye"][0] + 4, lm["left_eye"][1] + 2)
    assert full[eyes].sum() == 0
    assert full[:40].sum() == 0  # nothing above the head


@pytest.mark.parametrize(
    "field, value",
    [("skin", (90, 60, 40)), ("hair", (220, 190, 120)), ("bg_top", (10, 200, 10)), ("head_w", 47.0), ("dx", -3.5)],
)
def test_identity_factors_change_pixels_with_attributes_fixed(field, value):
    values = {"Smiling": 1.0, "Eyeglasses": 1.0}
    idt = dataclasses.replace(IDENTITY, **{field: value})
    assert getattr(idt, field) != getattr(IDENTITY, field)
    d = diff(render(idt, values), render(IDENTITY, values))
    assert d.mean() > 2
    if field == "bg_top":  # the background changes, the face does not
        assert d[:10].mean() > 50 and d[cue_region("Smiling", IDENTITY)].sum() == 0
    if field == "skin":  # the face changes, the background does not
        assert d[:10].sum() == 0


def test_face_stays_inside_the_celeba_crop():
    rng = np.random.default_rng(5)
    for _ in range(25):
        idt = sample_identity(rng)
        for values in ({a: 1.0 for a in ATTRIBUTES}, {"Bangs": 1.0, "Eyeglasses": 1.0}):
            img = render(idt, values).astype(np.int32)
            top = img[:20]
            assert (top == top[:, :1]).all(), "something drawn above row 20"
            sides = img[:170, [0, 1, 2, -3, -2, -1]]
            assert (sides == sides[:, :1]).all(), "something drawn at the left or right edge"


def test_values_are_clipped_and_unknown_attributes_refused():
    assert np.array_equal(render(IDENTITY, {"Smiling": 3.0}), render(IDENTITY, {"Smiling": 1.0}))
    assert np.array_equal(render(IDENTITY, {"Smiling": -1.0}), render(IDENTITY, {}))
    with pytest.raises(FaderkitError, match="Blond_Hair"):
        render(IDENTITY, {"Blond_Hair": 1.0})


def test_sampled_attribute_rates_match_the_documented_ones():
    rng = np.random.default_rng(0)
    s = {a: np.array(v) for a, v in zip(ATTRIBUTES, zip(*[sample_attributes(rng).values() for _ in range(6000)]))}
    male, smiling = s["Male"] == 1, s["Smiling"] == 1
    assert abs(male.mean() - 0.40) < 0.03 and abs(smiling.mean() - 0.50) < 0.03
    assert abs(s["Mouth_Slightly_Open"][smiling].mean() - 0.75) < 0.04
    assert abs(s["Mouth_Slightly_Open"][~smiling].mean() - 0.20) < 0.04
    assert abs(s["Eyeglasses"][male].mean() - 0.30) < 0.04 and abs(s["Eyeglasses"][~male].mean() - 0.15) < 0.03
    assert abs(s["Bangs"][male].mean() - 0.08) < 0.03 and abs(s["Bangs"][~male].mean() - 0.32) < 0.04


# ---------------------------------------------------------------- generation


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generate_writes_the_celeba_layout_reproducibly(tmp_path):
    a = gen.generate(tmp_path / "a", 20, seed=7, progress=False)
    b = gen.generate(tmp_path / "b", 20, seed=7, progress=False)
    c = gen.generate(tmp_path / "c", 20, seed=8, progress=False)
    files_a = tree(a)
    assert files_a == tree(b)
    assert files_a["img_align_celeba/000001.jpg"] != tree(c)["img_align_celeba/000001.jpg"]
    assert files_a["img_align_celeba/000001.jpg"] != files_a["img_align_celeba/000002.jpg"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folder left behind"

    from PIL import Image

    with Image.open(a / "img_align_celeba" / "000020.jpg") as im:
        assert im.size == (178, 218) and im.format == "JPEG"
    lines = (a / "list_attr_celeba.txt").read_text().splitlines()
    assert lines[0] == "20" and lines[1].split() == list(ATTRIBUTES)
    assert len(lines) == 22
    for i, line in enumerate(lines[2:], start=1):
        name, *vals = line.split()
        assert name == f"{i:06d}.jpg" and set(vals) <= {"1", "-1"} and len(vals) == len(ATTRIBUTES)
        _, attrs = gen.identity_and_attributes(7, i)
        assert [int(v) == 1 for v in vals] == [bool(attrs[n]) for n in ATTRIBUTES]
    parts = [line.split() for line in (a / "list_eval_partition.txt").read_text().splitlines()]
    assert [p[0] for p in parts] == [f"{i:06d}.jpg" for i in range(1, 21)]
    assert [p[1] for p in parts] == ["0"] * 16 + ["1"] * 2 + ["2"] * 2
    meta = json.loads((a / "toyfaces.json").read_text())
    assert meta["seed"] == 7 and meta["count"] == 20 and meta["attributes"] == list(ATTRIBUTES)
    assert meta["version"] == gen.GENERATOR_VERSION


def test_split_proportions():
    counts = np.bincount([gen.split_of(i, 1000) for i in range(1, 1001)])
    assert counts.tolist() == [800, 100, 100]


def test_generate_refuses_a_non_empty_folder_and_accepts_an_empty_one(tmp_path):
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(FaderkitError, match="not empty"):
        gen.generate(full, 10, progress=False)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    for too_few in (0, 9):
        with pytest.raises(FaderkitError, match="at least 10"):
            gen.generate(tmp_path / "none", too_few, progress=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    gen.generate(empty, 10, progress=False)
    assert (empty / "list_attr_celeba.txt").is_file()


def test_an_interrupted_generate_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_render(identity, values):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return render(identity, values)

    monkeypatch.setattr(gen, "render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        gen.generate(tmp_path / "toy", 10, progress=False)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- dataset


def test_plugin_registers_toyfaces():
    from faderkit_plugins import toyfaces

    (entry,) = toyfaces.faderkit_datasets()
    assert entry.name == "toyfaces" and entry.factory.__name__ == "ToyFaces"
    assert entry.factory.can_generate()


def test_toyfaces_dataset_end_to_end(tmp_path, capsys):
    pytest.importorskip("faderkit_plugins.celeba.dataset")
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    root = tmp_path / "toy"
    ds = ToyFaces(root, image_size=32, count=40, seed=3)
    assert "generating 40" in capsys.readouterr().err
    assert [a.name for a in ds.attributes] == list(ATTRIBUTES)
    train, test = ds.split("train"), ds.split("test")
    assert (len(train), len(ds.split("valid")), len(test)) == (32, 4, 4)
    for row, f in enumerate(test.files):
        _, attrs = gen.identity_and_attributes(3, int(f[:6]))
        assert test.labels[row].tolist() == [attrs[a] for a in ATTRIBUTES]
    stored = test.images(np.array([1]))[0]
    assert stored.shape == (3, 32, 32)

    same = ds.render("test", 1, {})
    assert same.shape == (3, 32, 32) and same.dtype == stored.dtype
    assert (same.int() - stored.int()).abs().float().mean() < 3  # JPEG noise only
    smiling = int(test.labels[1, ATTRIBUTES.index("Smiling")])
    flipped = ds.render("test", 1, {"Smiling": 1 - smiling})
    assert (flipped.int() - same.int()).abs().float().mean() > 0.3
    assert (flipped[:, :12].int() - same[:, :12].int()).abs().sum() == 0  # the top of the image is untouched

    with pytest.raises(FaderkitError, match="no attribute"):
        ds.render("test", 1, {"Blond_Hair": 1})
    with pytest.raises(FaderkitError, match="out of range"):
        ds.render("test", 4, {})

    before = (root / "list_attr_celeba.txt").stat().st_mtime_ns
    again = ToyFaces(root, image_size=32, attributes=["Male"], count=99, seed=5)  # read as-is
    assert "generating" not in capsys.readouterr().err
    assert (root / "list_attr_celeba.txt").stat().st_mtime_ns == before
    assert len(again.split("train")) == 32 and again.split("train").labels.shape == (32, 1)
    from faderkit.plugins import registries

    with pytest.raises(FaderkitError, match=r"params\.colour: unknown key \(accepted: cache_dir, unreadable, count, seed\)"):
        registries().datasets.create("toyfaces", root, image_size=32, params={"colour": "blue"})
