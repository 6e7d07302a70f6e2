"""Every registered dataset that can generate itself, exercised the same way: generate a tiny copy,
open its splits, check shapes, dtypes and label ranges, and train one tiny step on it.

A new registration (built-in or installed through the ``faderkit`` entry-point group) is tested
here without anyone writing a test for it. Datasets that read real downloads only (celeba,
oxford102) are covered by their own fixture-based tests.
"""

from __future__ import annotations

import pytest
import torch

from faderkit import FaderkitError, checkpoint
from faderkit.plugins import registries
from faderkit.recipe import validate

GENERATING = [e.name for e in registries().datasets.entries() if e.factory.can_generate()]
READ_ONLY = [e.name for e in registries().datasets.entries() if not e.factory.can_generate()]
COUNT = 30


def test_the_built_in_datasets_are_all_accounted_for():
    assert {"toyfaces", "toyflowers"} <= set(GENERATING)
    assert {"celeba", "oxford102"} <= set(READ_ONLY)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """name -> root of a tiny generated copy, made once per dataset."""
    made = {}

    def get(name):
        if name not in made:
            root = tmp_path_factory.mktemp(name) / "data"
            registries().datasets.get(name).factory.generate(root, COUNT, 0)
            made[name] = root
        return made[name]

    return get


@pytest.mark.parametrize("name", GENERATING)
def test_generated_copy_opens_with_well_formed_splits(name, generated):
    root = generated(name)
    factory = registries().datasets.get(name).factory
    ds = factory(root, image_size=16)
    assert ds.attributes, f"{name} has no attributes"
    assert len({a.name for a in ds.attributes}) == len(ds.attributes)
    assert all(a.size >= 2 for a in ds.attributes)
    total = 0
    for split_name in ds.split_names:
        split = ds.split(split_name)
        n = len(split)
        assert n >= 1, f"{name}: the {split_name} split is empty"
        total += n
        labels = split.labels
        assert labels.dtype == torch.int64 and labels.shape == (n, len(ds.attributes))
        for k, a in enumerate(ds.attributes):
            assert 0 <= int(labels[:, k].min()) and int(labels[:, k].max()) < a.size, f"{name}: {a.name} out of range"
        idx = torch.tensor([n - 1, 0]).numpy()
        images = split.images(idx)
        assert images.dtype == torch.uint8 and images.shape == (2, 3, 16, 16)
        assert torch.equal(images[1], split.images(idx[1:])[0])  # asked-for order, deterministic
    assert total <= COUNT
    with pytest.raises(FaderkitError, match="valid"):
        ds.split("no-such-split")
    spec = ds.preprocess_spec()
    assert set(spec) >= {"native_size", "crop_box"}


@pytest.mark.parametrize("name", GENERATING)
def test_one_tiny_training_step(name, generated, tmp_path):
    from faderkit.train import train

    recipe = validate({
        "data": {"name": name, "root": str(generated(name)), "image_size": 16},
        "model": {"n_layers": 2, "init_fm": 4, "max_fm": 8,
                  "discriminator": {"name": "latent", "params": {"conv_fm": 8, "hid_dim": 8}}},
        "train": {"schedule": {"steps": 1, "batch_size": 4}, "objective": {"lambda_e": 0.01},
                  "adversary": {"lambda_warmup": 0}, "logging": {"eval_batches": 1}},
        "classifier": {"steps": 1, "batch_size": 4, "params": {"init_fm": 4, "max_fm": 8, "hid_dim": 8}},
    })
    best = train(recipe, tmp_path / "run", progress=False, log=lambda m: None)
    tensors, meta = checkpoint.load(best)
    assert meta["step"] == 1 and meta["recipe"]["data"]["name"] == name
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
