import pytest
import yaml
from click.testing import CliRunner

from faderkit import FaderkitError
from faderkit.cli import cli
from faderkit.recipe import apply_overrides, load_recipe, parse_override

BASE = {"data": {"name": "toyfaces", "root": "data/x", "image_size": 32}, "model": {"n_layers": 4}, "train": {"schedule": {"steps": 10}}}


def write(tmp_path, raw, name="r.yaml"):
    p = tmp_path / name
    p.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    return p


def test_overrides_are_dotted_and_typed(tmp_path):
    r = load_recipe(write(tmp_path, BASE), ["train.schedule.steps=200", "train.schedule.lr=1e-3", "model.decoder.params.n_skip=1"])
    assert r.train.schedule.steps == 200 and r.train.schedule.lr == 1e-3
    assert r.model.decoder.params == {"upsample": "deconv", "norm": "batch", "dropout": 0.0, "n_skip": 1,
                                       "head": "plain", "change_width": 0.5, "refine": 0, "refine_layers": 1, "film": False,
                                       "coords": False}  # defaults filled in
    assert r.data.root.is_absolute()


def test_unknown_key_is_named(tmp_path):
    with pytest.raises(FaderkitError, match=r"train\.stepz: unknown key"):
        load_recipe(write(tmp_path, {**BASE, "train": {"stepz": 3}}))


def test_wrong_type_is_named(tmp_path):
    with pytest.raises(FaderkitError, match=r"train\.schedule\.batch_size"):
        load_recipe(write(tmp_path, BASE), ["train.schedule.batch_size=lots"])


def test_missing_section_and_negative_size(tmp_path):
    with pytest.raises(FaderkitError, match="data: required key is missing"):
        load_recipe(write(tmp_path, {"train": {"schedule": {"steps": 1}}}))
    with pytest.raises(FaderkitError, match=r"train\.schedule\.steps"):
        load_recipe(write(tmp_path, BASE), ["train.schedule.steps=-5"])


def test_image_size_must_be_a_power_of_two(tmp_path):
    with pytest.raises(FaderkitError, match="power of two"):
        load_recipe(write(tmp_path, BASE), ["data.image_size=96"])


def test_yaml_syntax_error_names_the_line(tmp_path):
    with pytest.raises(FaderkitError, match="line 3"):
        load_recipe(write(tmp_path, "data:\n  name: x\n  root: a: b\ntrain:\n  steps: 3\n"))


@pytest.mark.parametrize("bad", ["train.schedule.steps", "=3", "train..steps=3", ""])
def test_malformed_override(bad):
    with pytest.raises(FaderkitError, match="malformed --set"):
        parse_override(bad)


def test_override_into_a_value_is_refused():
    with pytest.raises(FaderkitError, match="is a value"):
        apply_overrides({"train": {"schedule": {"steps": 3}}}, ["train.schedule.steps.x=1"])


def test_print_recipe_shows_resolved_values_without_training(tmp_path):
    p = write(tmp_path, BASE)
    result = CliRunner().invoke(cli, ["train", str(p), "--set", "train.schedule.steps=77", "--print-recipe"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.output)
    assert printed["train"]["schedule"]["steps"] == 77
    assert printed["model"]["encoder"]["name"] == "paper"
    assert not (tmp_path / "runs").exists()


def test_cli_reports_bad_recipe_in_one_line(tmp_path):
    p = write(tmp_path, {**BASE, "bogus": 1})
    result = CliRunner().invoke(cli, ["train", str(p)])
    assert result.exit_code == 2
    assert "bogus: unknown key" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_shipped_recipes_validate():
    from pathlib import Path

    for path in sorted(Path(__file__).parents[1].joinpath("recipes").glob("*.yaml")):
        assert load_recipe(path).train.schedule.steps > 0
