"""The train section in groups by concern: the new layout, and recipes, overrides, sweeps and checkpoints written
with the flat one, which still load with one note per moved key."""

from __future__ import annotations

import re
import warnings

import pytest
import yaml
from click.testing import CliRunner
from conftest import tiny_recipe

import faderkit
from faderkit import checkpoint
from faderkit.cli import cli
from faderkit.errors import FaderkitError
from faderkit.recipe import as_resolved, load_recipe, validate
from faderkit.train_sections import MOVED, MovedKey, TrainSection

#: A train section as recipes wrote it before the groups, touching every group.
FLAT = {"steps": 12, "batch_size": 8, "lr": 0.001, "seed": 3, "edge_weight": 2.0, "lambda_e": 0.01,
        "lambda_warmup": 4, "dis_steps": 2, "dis_replay": 0, "log_every": 2, "eval_every": 6, "select_by": "last",
        "amp": "off", "threads": 1}
#: The same in groups, written out.
GROUPED = {"schedule": {"steps": 12, "batch_size": 8, "lr": 0.001, "seed": 3},
           "objective": {"edge_weight": 2.0, "lambda_e": 0.01},
           "adversary": {"lambda_warmup": 4, "dis_steps": 2, "dis_replay": 0},
           "logging": {"log_every": 2, "eval_every": 6, "select_by": "last"}, "speed": {"amp": "off", "threads": 1}}


def flat_recipe(root, train=FLAT) -> dict:
    raw = tiny_recipe(root)
    raw["train"] = dict(train)
    return raw


def notes(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, MovedKey)]


def test_every_moved_key_names_a_field_of_its_group():
    groups = TrainSection.model_fields
    assert all(key in groups[group].annotation.model_fields for key, group in MOVED.items())
    assert len(MOVED) == sum(len(g.annotation.model_fields) for g in groups.values())  # and every field is one


def test_a_flat_recipe_and_a_grouped_one_resolve_to_the_same_recipe(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovedKey)
        old = validate(flat_recipe(tmp_path))
    new = validate(flat_recipe(tmp_path, GROUPED))
    assert old.model_dump() == new.model_dump()
    assert new.train.adversary.dis_steps == 2 and new.train.speed.amp == "off" and new.train.schedule.seed == 3


def test_each_moved_key_is_noted_once_with_its_new_key(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("default")
        for _ in range(2):  # a second load of the same recipe (a sweep's runs) says nothing new
            validate(flat_recipe(tmp_path))
    said = notes(record)
    assert sorted(said) == sorted(f"train.{k} is now train.{MOVED[k]}.{k}" for k in FLAT)
    assert "train.dis_steps is now train.adversary.dis_steps" in said


def test_the_command_line_says_one_line_per_moved_key(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text(yaml.safe_dump(flat_recipe(tmp_path)))
    result = CliRunner().invoke(cli, ["train", str(path), "--print-recipe", "--set", "train.dis_steps=3",
                                      "--set", "train.adversary.dis_replay=4"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("note: ")]
    assert len(lines) == len(FLAT) and len(set(lines)) == len(lines)
    assert "note: train.dis_steps is now train.adversary.dis_steps" in lines
    printed = yaml.safe_load(result.output)["train"]
    assert printed["adversary"]["dis_steps"] == 3 and printed["adversary"]["dis_replay"] == 4
    assert "dis_steps" not in printed  # printed in the new layout


def test_old_and_new_paths_both_set(tmp_path):
    path = tmp_path / "r.yaml"
    raw = tiny_recipe(tmp_path, time_budget=600, losses=[{"name": "mse"}, {"name": "edges", "weight": 2.0},
                                                        {"name": "adversary", "weight": 0.01}])
    del raw["train"]["objective"]["lambda_e"]
    path.write_text(yaml.safe_dump(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovedKey)
        for steps, edges in (("train.steps=5", "train.losses.edges.weight=3"),
                             ("train.schedule.steps=5", "train.objective.losses.edges.weight=3")):
            r = load_recipe(path, [steps, edges, "train.dis_lr=0.01"])
            assert r.train.schedule.steps == 5 and r.train.schedule.time_budget is None  # a count beats the budget
            assert [t.weight for t in r.train.objective.losses] == [1.0, 3.0, 0.01]
            assert r.train.adversary.dis_lr == 0.01


def test_a_key_given_at_both_places_is_one_error(tmp_path):
    raw = tiny_recipe(tmp_path)
    raw["train"]["dis_steps"] = 3  # the group says 5
    raw["train"]["adversary"] = {"dis_steps": 5}
    with pytest.raises(FaderkitError, match=r"train\.dis_steps and train\.adversary\.dis_steps are both given; "
                                            r"keep train\.adversary\.dis_steps"):
        validate(raw)


@pytest.mark.parametrize("key, where", [("train.adversary.dis_stepz", r"train\.adversary\.dis_stepz: unknown key"),
                                        ("train.stepz", r"train\.stepz: unknown key")])
def test_an_unknown_key_is_one_error_line(tmp_path, key, where):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(tmp_path)))
    result = CliRunner().invoke(cli, ["train", str(path), "--print-recipe", "--set", f"{key}=3"])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("Error: invalid recipe")
    assert re.search(where, result.output)


def test_a_checkpoint_with_a_flat_recipe_loads_and_resumes_silently(toy_root, trained_run, tmp_path):
    tensors, meta = checkpoint.load(trained_run / "last.safetensors")
    grouped = meta["recipe"]["train"]
    meta["recipe"]["train"] = {k: v for group in grouped.values() for k, v in group.items()}  # as written before
    old = tmp_path / "old.safetensors"
    checkpoint.save(old, tensors, meta)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert faderkit.load(old).edit(toy_root / "img_align_celeba" / "000055.jpg", Smiling=1)
        assert as_resolved(meta["recipe"])["train"] == grouped
    assert notes(record) == []  # a checkpoint's recipe is not the reader's to edit


def test_a_sweep_grid_may_name_the_old_path(tmp_path, toy_root):
    from faderkit.sweep.spec import from_command_line, plan

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(toy_root)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MovedKey)
        runs = plan(from_command_line(path, ["train.edge_weight=0,2"], "0,1", ["train.steps=3"]), "s").runs
    assert {(r.recipe.train.objective.edge_weight, r.recipe.train.schedule.seed, r.recipe.train.schedule.steps)
            for r in runs} == {(0, 0, 3), (0, 1, 3), (2, 0, 3), (2, 1, 3)}
