"""The CelebA plugin on a tiny fake CelebA written in tmp_path: parsing, splits, the image cache, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from faderkit.errors import FaderkitError
from faderkit.imageio import crop_resize
from faderkit.interfaces import Attribute
from faderkit_plugins import celeba as plugin
from faderkit_plugins.celeba import cache as cache_mod
from faderkit_plugins.celeba.dataset import CelebA, CelebASplit

ATTRS = ["Smiling", "Male", "Young", "Eyeglasses"]
PARTS = [0] * 8 + [1] * 2 + [2] * 2  # 12 images: train 8, valid 2, test 2


def face_like(rng: np.random.Generator) -> Image.Image:
    """Smooth random colour fields at CelebA's size: like photos, unlike white noise, they survive JPEG."""
    small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((178, 218), Image.BICUBIC)


def make_fake_celeba(root: Path, n: int = 12, seed: int = 0) -> np.ndarray:
    """The on-disk layout of CelebA with n images; returns the +-1 attribute values (n, len(ATTRS))."""
    rng = np.random.default_rng(seed)
    (root / "img_align_celeba").mkdir(parents=True)
    values = rng.choice([1, -1], size=(n, len(ATTRS)))
    lines = [str(n), " ".join(ATTRS)]
    for i in range(n):
        face_like(rng).save(root / "img_align_celeba" / f"{i + 1:06d}.jpg", quality=90)
        lines.append(f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in values[i]))  # padded like the real file
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {PARTS[i]}\n" for i in range(n)))
    return values


@pytest.fixture
def fake(tmp_path):
    root = tmp_path / "celeba"
    return root, make_fake_celeba(root)


def source(root: Path, name: str, size: int) -> np.ndarray:
    with Image.open(root / "img_align_celeba" / name) as im:
        return crop_resize(im, size, CelebA.native_size, CelebA.crop_box).transpose(2, 0, 1)


def edit_line(path: Path, lineno: int, fn) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines) + "\n")


def test_registered_through_the_hook():
    (entry,) = plugin.faderkit_datasets()
    assert entry.name == "celeba" and entry.factory is CelebA
    assert "list_attr_celeba.txt" in entry.summary
    assert CelebA.crop_box == (0, 20, 178, 198) and CelebA.native_size == (178, 218)


def test_labels_and_split_sizes(fake):
    root, values = fake
    ds = CelebA(root, image_size=32)
    assert ds.attributes == tuple(Attribute(a) for a in ATTRS)
    assert ds.root == root
    sizes = {name: len(ds.split(name)) for name in ds.split_names}
    assert sizes == {"train": 8, "valid": 2, "test": 2}
    valid = ds.split("valid")
    assert isinstance(valid, CelebASplit) and valid.name == "valid"
    assert valid.files == ["000009.jpg", "000010.jpg"]
    assert valid.cache_index.tolist() == [8, 9]
    assert valid.labels.dtype == torch.int64 and valid.labels.shape == (2, len(ATTRS))
    assert valid.labels.tolist() == (values[8:10] == 1).astype(int).tolist()
    assert ds.split("valid") is valid  # memoised


def test_images_are_crop_resize_of_the_source(fake):
    root, _ = fake
    test = CelebA(root, image_size=64).split("test")
    batch = test.images(np.array([1, 0, 1]))
    assert batch.dtype == torch.uint8 and batch.shape == (3, 3, 64, 64)
    expected = [source(root, test.files[i], 64) for i in (1, 0, 1)]
    # at 64 px the crop (178 px) is under twice the size after a 2x draft: decoded in full, exactly equal
    assert np.array_equal(batch.numpy(), np.stack(expected))


def test_rows_are_read_without_mapping_the_cache(fake):
    root, _ = fake
    ds = CelebA(root, image_size=32)
    test = ds.split("test")
    cache = test._cache
    rows = test.cache_index[[1, 0, 1]]
    assert np.array_equal(cache.read(rows), np.asarray(cache.array[rows]))
    assert cache._fd is not None  # read through the file descriptor, not the memmap
    with pytest.raises(IndexError):
        cache.read(np.array([cache.shape[0]]))


def test_small_sizes_use_jpeg_draft_within_tolerance(fake):
    root, _ = fake
    assert cache_mod.draft_scale(CelebA.crop_box, CelebA.native_size, 64) == 1
    assert cache_mod.draft_scale(CelebA.crop_box, CelebA.native_size, 32) == 2
    assert cache_mod.draft_scale((0, 0, 512, 512), (512, 512), 64) == 4
    train = CelebA(root, image_size=16).split("train")
    got = train.images(np.arange(8)).numpy().astype(int)
    full = np.stack([source(root, f, 16) for f in train.files]).astype(int)
    assert not np.array_equal(got, full)  # the draft really was used...
    assert np.abs(got - full).mean() < 2  # ...and stays within 2 levels of a full decode


def test_attribute_subset_in_the_order_asked(fake):
    root, values = fake
    ds = CelebA(root, image_size=16, attributes=["Young", "Smiling"])
    assert [a.name for a in ds.attributes] == ["Young", "Smiling"]
    assert all(a.values == ("0", "1") for a in ds.attributes)
    assert ds.split("train").labels.tolist() == (values[:8][:, [2, 0]] == 1).astype(int).tolist()


def builds(monkeypatch) -> list:
    calls = []
    real = cache_mod.build

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache_mod, "build", counting)
    return calls


def test_cache_is_reused_not_rebuilt(fake, monkeypatch):
    root, _ = fake
    calls = builds(monkeypatch)
    first = CelebA(root, image_size=16).split("train").images(np.arange(8))
    assert len(calls) == 1
    (u8,) = (root / ".faderkit-cache").glob("*.u8")
    meta = json.loads(u8.with_suffix(".json").read_text())
    assert meta["shape"] == [12, 3, 16, 16] and meta["count"] == 12 and meta["image_size"] == 16
    again = CelebA(root, image_size=16).split("train").images(np.arange(8))
    assert len(calls) == 1 and torch.equal(first, again)


def test_cache_rebuilt_for_another_size_and_kept_per_size(fake, monkeypatch):
    root, _ = fake
    calls = builds(monkeypatch)
    CelebA(root, image_size=16).split("test")
    assert CelebA(root, image_size=24).split("test").images(np.array([0])).shape == (1, 3, 24, 24)
    assert len(calls) == 2
    assert len(list((root / ".faderkit-cache").glob("*.u8"))) == 2


def test_cache_rebuilt_when_an_image_changes(fake, monkeypatch):
    root, _ = fake
    calls = builds(monkeypatch)
    before = CelebA(root, image_size=16).split("train").images(np.array([0]))
    path = root / "img_align_celeba" / "000001.jpg"
    face_like(np.random.default_rng(99)).save(path, quality=90)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    after = CelebA(root, image_size=16).split("train").images(np.array([0]))
    assert len(calls) == 2 and not torch.equal(before, after)
    full = source(root, "000001.jpg", 16).astype(int)
    assert np.abs(after[0].numpy().astype(int) - full).mean() < 2
    assert len(list((root / ".faderkit-cache").glob("*.u8"))) == 1  # the superseded cache is gone


@pytest.mark.parametrize("damage", ["truncate", "no-manifest", "bad-manifest"])
def test_damaged_cache_is_rebuilt(fake, monkeypatch, damage):
    root, _ = fake
    good = CelebA(root, image_size=16).split("train").images(np.arange(8))
    (u8,) = (root / ".faderkit-cache").glob("*.u8")
    if damage == "truncate":
        os.truncate(u8, u8.stat().st_size // 2)
    elif damage == "no-manifest":  # what an interrupted build would leave, were it not for the temp file
        u8.with_suffix(".json").unlink()
    else:
        u8.with_suffix(".json").write_text(json.dumps({"shape": [12, 3, 32, 32]}))
    calls = builds(monkeypatch)
    again = CelebA(root, image_size=16).split("train").images(np.arange(8))
    assert len(calls) == 1 and torch.equal(good, again)


def test_cache_dir_parameter(fake, tmp_path):
    root, _ = fake
    CelebA(root, image_size=16, cache_dir=tmp_path / "elsewhere").split("valid")
    assert len(list((tmp_path / "elsewhere").glob("*.u8"))) == 1
    assert not (root / ".faderkit-cache").exists()


def test_parallel_build_matches_serial(fake, tmp_path, monkeypatch):
    root, _ = fake
    files = CelebA(root).files
    kw = dict(native_size=CelebA.native_size, crop_box=CelebA.crop_box)
    serial = cache_mod.ensure_cache(root / "img_align_celeba", files, 16, tmp_path / "s", workers=1, **kw)
    monkeypatch.setattr(cache_mod, "PARALLEL_MIN", 0)
    parallel = cache_mod.ensure_cache(root / "img_align_celeba", files, 16, tmp_path / "p", workers=2, **kw)
    assert np.array(serial.array).any() and np.array_equal(serial.array, parallel.array)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("damage", [b"not a jpeg at all", "truncated"])
def test_an_unreadable_image_stops_or_is_skipped_and_counted(fake, monkeypatch, capsys, workers, damage):
    root, _ = fake
    path = root / "img_align_celeba" / "000007.jpg"
    path.write_bytes(path.read_bytes()[:600] if damage == "truncated" else damage)
    monkeypatch.setattr(cache_mod, "PARALLEL_MIN", 0)
    monkeypatch.setattr(os, "cpu_count", lambda: workers)
    with pytest.raises(FaderkitError, match="cannot read image .*000007.jpg: .*set data.params.unreadable: skip"):
        CelebA(root, image_size=16).split("train")
    manifests = list((root / ".faderkit-cache").glob("*.json"))
    assert len(manifests) == 1  # every other image was cached: skipping needs no rebuild
    built = manifests[0].stat().st_mtime_ns

    ds = CelebA(root, image_size=16, unreadable="skip")
    train = ds.split("train")
    assert "000007.jpg" not in train.files and len(train) == int((ds._partition == 0).sum()) - 1
    assert ds.skipped == {"unreadable": 1}
    assert "left out 1 unreadable image(s) of" in capsys.readouterr().err
    assert manifests[0].stat().st_mtime_ns == built
    assert train.images(np.arange(len(train))).reshape(len(train), -1).any(1).all()  # no black rows


def test_unreadable_policy_is_checked(fake):
    from faderkit.plugins import registries

    with pytest.raises(FaderkitError, match=r"params\.unreadable: 'ignore' is not a choice; choose one of: stop, skip"):
        registries().datasets.create("celeba", fake[0], params={"unreadable": "ignore"})
    with pytest.raises(FaderkitError, match="unreadable must be 'stop' .* or 'skip'"):  # the cache's own argument
        cache_mod.ensure_cache(fake[0] / "img_align_celeba", [], 16, fake[0] / "c", unreadable="ignore")


def test_pickled_split_reopens_the_memmap(fake):
    import pickle

    root, _ = fake
    split = CelebA(root, image_size=16).split("test")
    first = split.images(np.array([0, 1]))
    blob = pickle.dumps(split)
    assert len(blob) < 12 * 3 * 16 * 16  # the cache itself is not pickled
    assert torch.equal(pickle.loads(blob).images(np.array([0, 1])), first)


def _rm(p: Path):
    if p.is_dir():
        import shutil

        shutil.rmtree(p)
    else:
        p.unlink()


def set_token(path: Path, lineno: int, col: int, text: str) -> None:
    def fn(line):
        tokens = line.split()
        tokens[col] = text
        return " ".join(tokens)

    edit_line(path, lineno, fn)


ATTR, PART, IMG = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"
#: case: (damage done to the fake root, the file the message must name, a fragment it must hold)
BROKEN = {
    "root missing": (_rm, "celeba", "does not exist"),
    "attr file missing": (lambda r: _rm(r / ATTR), ATTR, "lacks"),
    "partition file missing": (lambda r: _rm(r / PART), PART, "lacks"),
    "image folder missing": (lambda r: _rm(r / IMG), IMG, "lacks"),
    "count disagrees": (lambda r: edit_line(r / ATTR, 1, lambda s: "13"), ATTR, "says 13 images but 12"),
    "no images": (lambda r: (r / ATTR).write_text("0\n" + " ".join(ATTRS) + "\n"), ATTR, "lists no images"),
    "count not a number": (lambda r: edit_line(r / ATTR, 1, lambda s: "Smiling Male"), ATTR, "line 1"),
    "too few values": (lambda r: edit_line(r / ATTR, 5, lambda s: s[:-3]), ATTR, "line 5: expected a file name and 4 values, found 3"),
    "too many values": (lambda r: edit_line(r / ATTR, 7, lambda s: s + " 1"), ATTR, "line 7"),
    "blank line": (lambda r: edit_line(r / ATTR, 4, lambda s: ""), ATTR, "line 4"),
    "value 0": (lambda r: set_token(r / ATTR, 4, 4, "0"), ATTR, "line 4: Eyeglasses is '0'"),
    "value 11": (lambda r: set_token(r / ATTR, 6, 1, "11"), ATTR, "line 6: Smiling is '11'"),
    "value 1-1": (lambda r: set_token(r / ATTR, 9, 2, "1-1"), ATTR, "line 9: Male is '1-1'"),
    "value --1": (lambda r: set_token(r / ATTR, 14, 3, "--1"), ATTR, "line 14: Young is '--1'"),
    "duplicate name": (lambda r: set_token(r / ATTR, 6, 0, "000001.jpg"), ATTR, "line 6: 000001.jpg is listed twice"),
    "missing from partition": (lambda r: edit_line(r / PART, 5, lambda s: "000099.jpg 0"), PART, "000005.jpg"),
    "partition value 3": (lambda r: set_token(r / PART, 2, 1, "3"), PART, "line 2"),
    "partition value 01": (lambda r: set_token(r / PART, 12, 1, "01"), PART, "line 12"),
    "partition line short": (lambda r: edit_line(r / PART, 3, lambda s: s[:-2]), PART, "line 3"),
    "duplicate in partition": (lambda r: set_token(r / PART, 3, 0, "000001.jpg"), PART, "line 3: 000001.jpg is listed twice"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_files_raise_one_line_errors_naming_them(fake, case):
    root, _ = fake
    damage, filename, fragment = BROKEN[case]
    damage(root)
    with pytest.raises(FaderkitError) as err:
        CelebA(root, image_size=16)
    msg = str(err.value)
    assert filename in msg and fragment in msg and "\n" not in msg


def test_image_listed_but_absent(fake):
    root, _ = fake
    (root / "img_align_celeba" / "000011.jpg").unlink()
    ds = CelebA(root, image_size=16)  # existence is checked when the cache is built, by name
    with pytest.raises(FaderkitError, match=r"000011\.jpg is listed in list_attr_celeba\.txt but missing"):
        ds.split("test")


def test_unknown_attribute_lists_the_available_ones(fake):
    root, _ = fake
    with pytest.raises(FaderkitError) as err:
        CelebA(root, attributes=["Smiling", "Smilling"])
    msg = str(err.value)
    assert "'Smilling'" in msg and ATTR in msg and "Smiling Male Young Eyeglasses" in msg


def test_bad_parameters(fake):
    root, _ = fake
    from faderkit.plugins import registries

    with pytest.raises(FaderkitError, match=r"dataset 'celeba': params\.flip: unknown key \(accepted: cache_dir, unreadable\)"):
        registries().datasets.create("celeba", root, params={"flip": True})
    with pytest.raises(FaderkitError, match="image_size"):
        CelebA(root, image_size=0)
    with pytest.raises(FaderkitError, match="train, valid, test"):
        CelebA(root).split("validation")
