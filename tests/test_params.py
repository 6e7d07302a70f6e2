"""Component params as pydantic models: declared by the plugins, checked and filled in by the core,
listed by `faderkit plugins --params`, and recorded, defaults included, with every run."""

from __future__ import annotations

import copy
import inspect
import shutil

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel, Field

import faderkit
from faderkit import Entry, FaderkitError, Params, checkpoint, hookimpl
from faderkit.cli import cli
from faderkit.evaluate.judge import _cache_matches
from faderkit.params import BadParams, check
from faderkit.plugins import KINDS, collect, make_plugin_manager, register, registries, unregister
from faderkit.recipe import validate
from faderkit.train import train

from conftest import tiny_recipe

WIDE = {"COLUMNS": "200"}  # rich's width: one table row per line
DECLARED = [(kind, e) for kind in KINDS for e in registries()[kind].entries() if e.params is not None]


def _id(item) -> str:
    return f"{item[0]}-{item[1].name}"


def test_every_builtin_declares_its_params():
    names = {(kind, e.name) for kind, e in DECLARED}
    assert {("dataset", "celeba"), ("dataset", "toyfaces"), ("dataset", "oxford102"), ("dataset", "toyflowers"),
            ("encoder", "paper"), ("decoder", "paper"), ("discriminator", "latent"),
            ("image_discriminator", "patch"), ("classifier", "paper")} <= names


@pytest.mark.parametrize("item", DECLARED, ids=_id)
def test_every_declared_param_has_a_description(item):
    kind, entry = item
    missing = [name for name, f in entry.params.model_fields.items() if not (f.description or "").strip()]
    assert missing == [], f"{kind} '{entry.name}' params without a description: {missing}"


@pytest.mark.parametrize("item", DECLARED, ids=_id)
def test_the_factory_takes_every_declared_param_with_the_same_default(item):
    """The model and the factory's signature must not drift apart (a default in two places)."""
    kind, entry = item
    factory = entry.factory.__init__ if inspect.isclass(entry.factory) else entry.factory
    signature = inspect.signature(factory).parameters
    defaults = check(entry.params, {}).model_dump(mode="json")
    for name in entry.params.model_fields:
        assert name in signature, f"{kind} '{entry.name}' declares {name}, its factory does not take it"
        own = signature[name].default
        if own is not inspect.Parameter.empty:
            assert check(entry.params, {name: list(own) if isinstance(own, tuple) else own}).model_dump(
                mode="json")[name] == defaults[name], f"{kind} '{entry.name}': default of {name} differs"


def test_a_recipe_resolves_every_component_with_its_defaults(toy_root):
    r = validate(tiny_recipe(toy_root))
    assert r.model.decoder.params == {"upsample": "deconv", "norm": "batch", "dropout": 0.0, "n_skip": 0,
                                       "head": "plain", "change_width": 0.5, "refine": 0, "refine_layers": 1, "film": False,
                                       "coords": False}
    assert r.model.discriminator.params == {"conv_fm": 32, "hid_dim": 32, "dropout": 0.3, "input_norm": "off"}  # the recipe's, + default
    assert r.data.params == {"cache_dir": None, "unreadable": "stop", "count": 60, "seed": 0}
    assert r.classifier.params["dropout"] == 0.3 and r.model.patch_discriminator is None
    again = validate(r.model_dump(mode="json"))
    assert again == r  # resolving a resolved recipe changes nothing


@pytest.mark.parametrize("given,resolved", [(True, "standard"), (False, "off"), ("robust", "robust"), ("ranks", "ranks")])
def test_input_norm_still_takes_the_switch_it_once_was(toy_root, given, resolved):
    r = tiny_recipe(toy_root)
    r["model"]["discriminator"] = {"name": "mlp", "params": {"input_norm": given}}
    assert validate(r).model.discriminator.params["input_norm"] == resolved


def test_the_run_records_resolved_params(trained_run):
    saved = yaml.safe_load((trained_run / "recipe.yaml").read_text())
    assert saved["model"]["decoder"]["params"]["upsample"] == "deconv"
    assert saved["model"]["encoder"]["params"] == {"norm": "batch"}
    for name in ("best", "last", "classifier"):
        meta = checkpoint.read_meta(trained_run / f"{name}.safetensors")
        assert meta["recipe"]["model"]["decoder"]["params"]["upsample"] == "deconv"
        assert meta["recipe"]["data"]["params"]["unreadable"] == "stop"


def test_print_recipe_shows_the_params_each_component_resolves_to(tmp_path, toy_root):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(toy_root)))
    result = CliRunner().invoke(cli, ["train", str(path), "--print-recipe", "--set", "model.decoder.params.n_skip=1"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["model"]["decoder"]["params"] == {"upsample": "deconv", "norm": "batch", "dropout": 0.0, "n_skip": 1,
                                       "head": "plain", "change_width": 0.5, "refine": 0, "refine_layers": 1, "film": False,
                                       "coords": False}
    assert printed["classifier"]["params"] == {"init_fm": 8, "max_fm": 16, "hid_dim": 16, "dropout": 0.3}


# ---------------------------------------------------------------- checkpoints written before params were resolved

def _as_an_older_version_wrote_it(src, dst, raw: dict):
    """``src`` with its recipe's params as written in ``raw`` (no defaults), as faderkit stored them before."""
    tensors, meta = checkpoint.load(src)
    rec, raw = meta["recipe"], copy.deepcopy(raw)
    rec["data"]["params"] = raw["data"].get("params", {})
    for part in ("encoder", "decoder", "discriminator"):
        rec["model"][part]["params"] = raw["model"].get(part, {}).get("params", {})
    rec["classifier"]["params"] = raw["classifier"].get("params", {})
    checkpoint.save(dst, tensors, meta)
    return meta


def test_an_older_checkpoint_edits_and_resumes(toy_root, trained_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    raw = tiny_recipe(toy_root, steps=14)
    meta = _as_an_older_version_wrote_it(trained_run / "last.safetensors", run / "last.safetensors", raw)
    assert meta["recipe"]["model"]["decoder"]["params"] == {}
    assert faderkit.load(run / "last.safetensors").edit(toy_root / "img_align_celeba" / "000055.jpg", Smiling=1)
    # the same recipe, which now resolves to the defaults the old checkpoint left out, resumes
    train(validate(raw), run, resume=True, progress=False, log=lambda m: None)
    assert checkpoint.read_meta(run / "last.safetensors")["step"] == 14
    # a param that really differs is still refused, by name
    shutil.copy(trained_run / "last.safetensors", run / "last.safetensors")
    raw["model"]["decoder"] = {"name": "paper", "params": {"upsample": "nearest"}}
    with pytest.raises(FaderkitError, match=r"trained with model\.decoder\.params\.upsample = 'deconv', this recipe has 'nearest'"):
        train(validate(raw), run, resume=True, progress=False, log=lambda m: None)


def test_an_older_eval_classifier_cache_still_matches(toy_root, trained_run, tmp_path):
    raw = tiny_recipe(toy_root)
    recipe = validate(raw)
    old = _as_an_older_version_wrote_it(trained_run / "classifier.safetensors", tmp_path / "c.safetensors", raw)
    assert old["recipe"]["classifier"]["params"] == {"init_fm": 8, "max_fm": 16, "hid_dim": 16}
    assert _cache_matches({**old, "seed_offset": 1}, recipe)
    raw["classifier"]["params"]["dropout"] = 0.5  # another classifier: the cache must not be taken for it
    assert not _cache_matches({**old, "seed_offset": 1}, validate(raw))


def test_a_checkpoint_loads_without_the_plugin_of_its_dataset(trained_run, tmp_path):
    tensors, meta = checkpoint.load(trained_run / "best.safetensors")
    meta["recipe"]["data"]["name"] = "uninstalled"
    checkpoint.save(tmp_path / "c.safetensors", tensors, meta)
    assert faderkit.load(tmp_path / "c.safetensors").attributes  # edit needs no dataset
    with pytest.raises(FaderkitError, match=r"data\.name: unknown dataset 'uninstalled'; choose one of: .*toyfaces"):
        validate(meta["recipe"])  # a recipe a user gives is checked in full


# ---------------------------------------------------------------- third-party plugins

class Width(Params):
    width: int = Field(4, ge=1, description="channels")


def _decoder(arch, width: int = 4):
    raise RuntimeError(f"built with width={width!r}")  # never needed: the recipe is refused first


class Loose(BaseModel):  # a plain pydantic model that would ignore unknown keys
    width: int = Field(4, description="channels")


class Plugin:
    @hookimpl
    def faderkit_decoders(self):
        return [Entry("declared", _decoder, "declares its params", params=Width),
                Entry("undeclared", lambda arch, **params: params, "no params model")]


@pytest.fixture
def plugin():
    obj = Plugin()
    register(obj, "third-party")
    yield obj
    unregister(obj)


def test_a_third_party_model_is_checked_like_the_builtins(plugin, toy_root):
    raw = tiny_recipe(toy_root)
    raw["model"]["decoder"] = {"name": "declared", "params": {"width": 0, "hieght": 2}}
    with pytest.raises(FaderkitError) as err:
        validate(raw, "r.yaml")
    assert str(err.value) == ("invalid recipe r.yaml: model.decoder.params.hieght: unknown key (accepted: width); "
                              "model.decoder.params.width: expected int >= 1, got 0")
    result = CliRunner().invoke(cli, ["plugins", "--params", "declared"], env=WIDE)
    assert result.exit_code == 0 and "width" in result.output and "int >= 1" in result.output


def test_a_component_without_a_model_gets_its_params_as_written(plugin, toy_root):
    raw = tiny_recipe(toy_root)
    raw["model"]["decoder"] = {"name": "undeclared", "params": {"anything": [1, 2]}}
    r = validate(raw)
    assert r.model.decoder.params == {"anything": [1, 2]}
    assert registries()["decoder"].create("undeclared", None, params=r.model.decoder.params) == {"anything": [1, 2]}
    result = CliRunner().invoke(cli, ["plugins", "--params", "undeclared"], env=WIDE)
    assert result.exit_code == 0 and "declares no params model" in result.output


def test_unknown_keys_are_refused_even_by_a_model_that_would_ignore_them():
    with pytest.raises(BadParams, match=r"hieght: unknown key \(accepted: width\)"):
        check(Loose, {"hieght": 3})
    assert check(Loose, {"width": 3}).width == 3


@pytest.mark.parametrize("value, message", [(True, "got true"), ("3", "got '3'"), (2.0, "got 2.0"), (None, "got null")])
def test_loose_types_are_refused(value, message):
    with pytest.raises(BadParams) as err:
        check(Width, {"width": value})
    assert str(err.value) == f"width: expected int >= 1, {message}"


def test_params_that_are_not_a_model_are_refused_when_the_plugin_loads():
    class Bad:
        @hookimpl
        def faderkit_encoders(self):
            return [Entry("odd", object, params={"width": 4})]

    with pytest.raises(FaderkitError, match="gave encoder 'odd' params=.*expected a pydantic model class"):
        collect(make_plugin_manager([Bad()], autoload=False))


# ---------------------------------------------------------------- the listing

def test_plugins_params_lists_type_default_and_description():
    result = CliRunner().invoke(cli, ["plugins", "--params", "paper", "--kind", "decoder"], env=WIDE)
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:5]]
            for line in result.output.splitlines() if line.count("│") == 5}
    assert rows["upsample"][:2] == ["deconv | nearest | pixelshuffle", "deconv"]
    assert rows["dropout"][:2] == ["float in [0, 1)", "0.0"] and rows["n_skip"][:2] == ["int >= 0", "0"]
    assert "transposed convolution" in rows["upsample"][2]
    assert "decoder paper (plugin paper)" in result.output
    assert "encoder paper" not in result.output and "classifier paper" not in result.output  # --kind decoder


def test_plugins_params_without_a_name_lists_every_component():
    result = CliRunner().invoke(cli, ["plugins", "--params"], env=WIDE)
    assert result.exit_code == 0, result.output
    for kind, entry in DECLARED:
        assert f"{kind} {entry.name} (plugin {entry.plugin})" in result.output
    assert "[default" not in result.output and "<root>/.faderkit-cache" in result.output  # no markup eaten


def test_plugins_params_of_an_unknown_name_is_one_error_line():
    result = CliRunner().invoke(cli, ["plugins", "--params", "papr"])
    assert result.exit_code == 2
    assert result.output.strip() == ("Error: no component named 'papr'; registered: adversary, attribute_weighted, celeba, "
                                     "change_mask, classifier, coarse, edges, focal_frequency, l1, latent, latent_distance, latent_shape, local, mlp, mse, mtcnn, "
                                     "oxford102, paper, patch, ray, sparse_change, submitit, toyfaces, toyflowers")
