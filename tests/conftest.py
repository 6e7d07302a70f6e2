"""Shared fixtures: a tiny toy-faces dataset and a tiny trained run, built once per session."""

from __future__ import annotations

import shutil

import pytest

from faderkit.recipe import validate
from faderkit.train_sections import nest

ATTRS = ["Smiling", "Eyeglasses"]


def tiny_recipe(root, **train) -> dict:
    """A recipe small enough to train in about a second on a CPU (32 px, 3 layers, few maps); ``train``: settings
    by name (``dis_steps=3``), each put in its group of the train section."""
    return {
        "data": {"name": "toyfaces", "root": str(root), "image_size": 32, "attributes": ATTRS,
                 "params": {"count": 60}},
        "model": {"n_layers": 3, "init_fm": 8, "max_fm": 32,
                  "discriminator": {"name": "latent", "params": {"conv_fm": 32, "hid_dim": 32}}},
        "train": nest({"steps": 12, "batch_size": 8, "lambda_e": 0.01, "lambda_warmup": 4, "log_every": 2,  # in groups
                       "eval_every": 6, "sample_every": 6, "checkpoint_every": 4, "eval_batches": 1, **train}, note=False),
        "classifier": {"steps": 6, "batch_size": 8, "params": {"init_fm": 8, "max_fm": 16, "hid_dim": 16}},
    }


def generated(tmp_path_factory, dataset: str, count: int):
    """A fresh synthetic copy of a registered dataset that can generate itself (seed 0)."""
    from faderkit.plugins import registries

    root = tmp_path_factory.mktemp(dataset) / dataset
    registries().datasets.get(dataset).factory.generate(root, count, 0)
    return root


@pytest.fixture(scope="session", autouse=True)
def precision_cache(tmp_path_factory):
    """train.speed.amp auto's CPU calibration is cached in a folder of the session's, never the user's."""
    import os

    path = tmp_path_factory.mktemp("cache")
    saved = os.environ.get("FADERKIT_CACHE_DIR")
    os.environ["FADERKIT_CACHE_DIR"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("FADERKIT_CACHE_DIR", None)
    else:
        os.environ["FADERKIT_CACHE_DIR"] = saved


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """60 toy faces in the CelebA layout (48 train / 6 valid / 6 test), with their 32 px cache."""
    return generated(tmp_path_factory, "toyfaces", 60)


@pytest.fixture
def toy_copy(toy_root, tmp_path):
    """A private copy of the toy dataset that a test may damage."""
    dst = tmp_path / "faces"
    shutil.copytree(toy_root, dst)
    return dst


@pytest.fixture(scope="session")
def trained_run(toy_root, tmp_path_factory):
    """A finished tiny run: its directory (best/last/classifier checkpoints, samples, metrics)."""
    from faderkit.train import train

    run = tmp_path_factory.mktemp("run") / "tiny"
    train(validate(tiny_recipe(toy_root)), run, progress=False, log=lambda m: None)
    return run


@pytest.fixture(scope="session")
def flower_run(tmp_path_factory):
    """A tiny categorical colour fader on 40 toy flowers: (best checkpoint, dataset root)."""
    from faderkit.train import train

    root = generated(tmp_path_factory, "toyflowers", 40)
    raw = tiny_recipe(root)
    raw["data"] = {"name": "toyflowers", "root": str(root), "image_size": 32, "params": {"color_mode": "categorical"}}
    best = train(validate(raw), tmp_path_factory.mktemp("flower-run") / "run", progress=False, log=lambda m: None)
    return best, root
