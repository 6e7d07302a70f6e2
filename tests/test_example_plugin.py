"""The example third-party plugin package (plugins/example_plugin): its entry point, registration,
`faderkit plugins` listing it, and a few training steps on its dataset."""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from faderkit import FaderkitError, checkpoint
from faderkit.cli import cli
from faderkit.plugins import ENTRY_POINT_GROUP, register, registries, unregister
from faderkit.recipe import validate

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "plugins" / "example_plugin"


@pytest.fixture
def stripes_module(monkeypatch):
    """The example package importable (as if pip-installed) and registered in this process, then removed."""
    monkeypatch.syspath_prepend(str(PACKAGE))
    import faderkit_stripes

    register(faderkit_stripes, "stripes")
    try:
        yield faderkit_stripes
    finally:
        unregister(faderkit_stripes)
        for name in [m for m in sys.modules if m.startswith("faderkit_stripes")]:
            del sys.modules[name]


def test_package_declares_its_entry_point_and_stays_out_of_faderkit():
    own = tomllib.loads((PACKAGE / "pyproject.toml").read_text())
    assert own["project"]["name"] == "faderkit-example-plugin"
    assert own["project"]["entry-points"][ENTRY_POINT_GROUP] == {"stripes": "faderkit_stripes"}
    main = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert not any("stripes" in p or "example" in p for p in main["tool"]["setuptools"]["packages"])
    assert "stripes" not in main["project"]["entry-points"][ENTRY_POINT_GROUP]


def test_entry_point_loads_the_hook_module(monkeypatch):
    monkeypatch.syspath_prepend(str(PACKAGE))
    try:
        module = EntryPoint("stripes", "faderkit_stripes", ENTRY_POINT_GROUP).load()  # what pluggy does
        (entry,) = module.faderkit_datasets()
        assert entry.name == "stripes" and entry.factory.can_generate()
    finally:
        for name in [m for m in sys.modules if m.startswith("faderkit_stripes")]:
            del sys.modules[name]


def test_registered_it_is_listed_by_faderkit_plugins(stripes_module):
    assert registries().datasets.get("stripes").plugin == "stripes"
    assert ("dataset", "stripes") in registries().plugins["stripes"]
    result = CliRunner().invoke(cli, ["plugins"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "stripes" in line]
    assert [cell.strip() for cell in rows[0].split("│")[1:4]] == ["stripes", "dataset", "stripes"]
    assert "Example plugin" in result.output


def test_unregistered_it_is_gone(stripes_module):
    unregister(stripes_module)
    try:
        assert "stripes" not in registries().datasets
    finally:
        register(stripes_module, "stripes")


def test_its_dataset_honours_the_interface(stripes_module, tmp_path):
    ds = registries().datasets.create("stripes", tmp_path / "s", image_size=16, count=20, seed=1)
    assert [a.name for a in ds.attributes] == ["Vertical", "Thick"]
    assert [len(ds.split(n)) for n in ds.split_names] == [16, 2, 2]
    imgs = ds.split("train").images(np.array([3, 0]))
    assert imgs.dtype == torch.uint8 and imgs.shape == (2, 3, 16, 16)
    vertical = ds.split("train").labels[:, 0].bool()
    x = ds.split("train").images(np.arange(16)).float()
    col_var, row_var = x.var(2).mean((1, 2)), x.var(3).mean((1, 2))  # vertical stripes vary along rows
    assert ((col_var < row_var) == vertical).all()
    with pytest.raises(FaderkitError, match=r"dataset 'stripes': params\.colour: unknown key \(accepted: count, seed\)"):
        registries().datasets.create("stripes", tmp_path / "s", params={"colour": 1})


def test_trains_a_few_steps_with_it(stripes_module, tmp_path):
    from faderkit.train import train

    recipe = validate({
        "data": {"name": "stripes", "root": str(tmp_path / "stripes"), "image_size": 16,
                 "params": {"count": 40, "seed": 0}},
        "model": {"n_layers": 2, "init_fm": 8, "max_fm": 16,
                  "discriminator": {"name": "latent", "params": {"conv_fm": 16, "hid_dim": 16}}},
        "train": {"schedule": {"steps": 4, "batch_size": 8}, "objective": {"lambda_e": 0.01},
                  "adversary": {"lambda_warmup": 2}, "logging": {"eval_batches": 1, "log_every": 2}},
        "classifier": {"steps": 4, "batch_size": 8, "params": {"init_fm": 8, "max_fm": 16, "hid_dim": 16}},
    })
    best = train(recipe, tmp_path / "run", progress=False, log=lambda m: None)
    meta = checkpoint.read_meta(best)
    assert meta["step"] == 4 and [a["name"] for a in meta["attributes"]] == ["Vertical", "Thick"]
    assert (tmp_path / "stripes" / "stripes.json").is_file()  # generated on first use
