"""The CelebA recipes: the paper's setting stated in full, --print-recipe and a shrunk training run on
toy faces written in each CelebA layout, through the real command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from faderkit.cli import cli
from faderkit.recipe import load_recipe

RECIPES = Path(__file__).parents[1] / "recipes"
CELEBA = ["celeba_128.yaml", "celeba_256_paper.yaml"]
LAYOUTS = ("original", "kaggle", "torchvision")
#: Shrinks a recipe to seconds on a CPU; everything not named here stays as the recipe says.
TINY = ["data.image_size=32", "model.n_layers=3", "model.init_fm=8", "model.max_fm=32", "train.schedule.steps=3",
        "train.schedule.batch_size=4", "train.logging.eval_batches=1", "classifier.steps=2", "classifier.batch_size=4",
        "classifier.params.init_fm=8", "classifier.params.max_fm=16", "classifier.params.hid_dim=16"]


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("celeba-recipes")
    for layout in LAYOUTS:
        result = CliRunner().invoke(cli, ["data", "toyfaces", str(base / layout), "-n", "20", "--layout", layout])
        assert result.exit_code == 0, result.output
    return {layout: base / layout for layout in LAYOUTS}


def test_the_paper_recipe_states_the_papers_adversary_explicitly():
    raw = yaml.safe_load((RECIPES / "celeba_256_paper.yaml").read_text())
    t = {k: v for group in raw["train"].values() for k, v in group.items()}
    assert (t["adv_objective"], t["dis_steps"], t["dis_replay"], t["shared_batch"]) == ("paper", 1, 0, True)
    assert raw["model"]["discriminator"]["name"] == "latent"
    assert raw["data"]["image_size"] == 256 and (t["lr"], t["beta1"], t["batch_size"]) == (0.002, 0.5, 32)
    assert (t["lambda_e"], t["lambda_warmup"]) == (0.0001, 500000)


@pytest.mark.parametrize("name", CELEBA)
def test_the_celeba_recipes_state_their_measured_time_per_1000_iterations(name):
    text = (RECIPES / name).read_text()
    assert "Time per 1,000 iterations" in text and "benchmarks/recipe_time.py" in text
    recipe = load_recipe(RECIPES / name)
    assert recipe.data.name == "celeba" and recipe.data.image_size in (128, 256)


@pytest.mark.parametrize("name", CELEBA)
def test_print_recipe_on_a_toy_layout_writes_nothing(layouts, tmp_path, name):
    run = tmp_path / "run"
    result = CliRunner().invoke(cli, ["train", str(RECIPES / name), "--set", f"data.root={layouts['kaggle']}",
                                      "--run-dir", str(run), "--print-recipe"])
    assert result.exit_code == 0, result.output
    printed = yaml.safe_load(result.stdout)
    assert printed["data"]["root"] == str(layouts["kaggle"]) and printed["data"]["name"] == "celeba"
    assert printed["train"]["schedule"]["steps"] == load_recipe(RECIPES / name).train.schedule.steps
    assert not run.exists()


@pytest.mark.parametrize("name", CELEBA)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_each_celeba_recipe_trains_on_each_toy_layout(layouts, tmp_path, name, layout):
    run = tmp_path / "run"
    args = ["train", str(RECIPES / name), "--set", f"data.root={layouts[layout]}", "--run-dir", str(run), "--quiet"]
    for o in TINY:
        args += ["--set", o]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"{layout} layout" in result.output
    assert (run / "last.safetensors").is_file() and (run / "best.safetensors").is_file()
    steps = [json.loads(line).get("step") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 3
    resolved = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe = yaml.safe_load((RECIPES / name).read_text())
    for group, key in (("adversary", "adv_objective"), ("adversary", "dis_steps"), ("adversary", "dis_replay"),
                       ("objective", "lambda_e"), ("schedule", "lr")):  # the recipe's own settings kept
        assert resolved["train"][group][key] == recipe["train"][group][key]
