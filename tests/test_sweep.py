"""faderkit sweep: validation before anything runs, runs and evals never repeated, a lock, failures recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from faderkit import FaderkitError
from faderkit.cli import cli
from faderkit.rundir import read_records
from faderkit.sweep import load, report, run_sweep, sweep
from faderkit.evaluate.figures import figures
from faderkit.sweep.runner import SweepLock

from conftest import tiny_recipe

EVAL = {"gt_images": 4, "limit": 6}


def write_sweep(tmp_path: Path, toy_root: Path, **spec) -> Path:
    raw = tiny_recipe(toy_root, steps=4, eval_every=4, sample_every=4)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(raw))
    body = {"recipe": "tiny.yaml", "seeds": [0], "eval": EVAL, **spec}
    path = tmp_path / "sw.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.mark.parametrize("spec, words", [
    ({"variants": [{"name": "a", "set": {"train.bogus": 1}}]}, ["variant 'a'", "train.bogus", "unknown key"]),
    ({"variants": [{"name": "a"}, {"name": "b", "set": {"train.schedule.steps": -3}}]}, ["variant 'b'", "train.schedule.steps"]),
    ({"grid": {"train.objective.edge_weight": [0, "sharp"]}}, ["edge_weight=sharp", "train.objective.edge_weight"]),
    ({"variants": [{"name": "a"}, {"name": "a", "set": {"train.schedule.lr": 0.001}}]}, ["'a' is used twice"]),
    ({"variants": [{"name": "../up"}]}, ["'../up'", "folder"]),
    ({"grid": {"train.schedule.lr": [0.1]}, "variants": [{"name": "a"}]}, ["either grid or variants"]),
    ({"seeds": [0, 0]}, ["repeat a seed"]),
    ({"colour": "red"}, ["colour", "unknown key"]),
    ({"targets": [{"figure": "recon_psnr", "variant": "zz", "min": 1}]}, ["variant 'zz'"]),
    ({"targets": [{"figure": "recon_psnr"}]}, ["min, max or both"]),
    ({"recipe": "missing.yaml"}, ["missing.yaml", "not a file"]),
    ({"executor": {"name": "local", "params": {"jobs": 2}}}, ["executor", "as executor.jobs"]),
    ({"executor": {"name": "local", "jobs": 0}}, ["executor.jobs"]),
    ({"executor": {"name": "slurmish"}}, ["slurmish"]),
    ({"executor": {"name": "local", "params": {"colour": 1}}}, ["executor 'local'", "colour", "unknown key"]),
])
def test_a_bad_sweep_is_one_error_naming_it_and_nothing_runs(tmp_path, toy_root, spec, words):
    path = write_sweep(tmp_path, toy_root, **spec)
    result = CliRunner().invoke(cli, ["sweep", str(path), "--root", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert line.startswith("Error:") and "\n" not in line, line
    for w in words:
        assert w in line, line
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, words", [
    (["--grid", "train.objective.edge_weight"], ["malformed --grid"]),
    (["--grid", "train.schedule.lr=1,2", "--grid", "train.schedule.lr=3"], ["given twice"]),
    (["--seeds", "0,x"], ["--seeds '0,x'"]),
    (["--grid", "train.schedule.lr=0.1", "--executor", "slurmish"], ["unknown executor 'slurmish'", "local"]),
])
def test_bad_command_line_forms(tmp_path, toy_root, args, words):
    write_sweep(tmp_path, toy_root)
    result = CliRunner().invoke(cli, ["sweep", str(tmp_path / "tiny.yaml"), "--root", str(tmp_path / "runs"), *args])
    assert result.exit_code == 2 and result.output.startswith("Error:"), result.output
    assert all(w in result.output for w in words), result.output


def test_the_command_line_form_plans_a_grid_over_seeds(tmp_path, toy_root):
    write_sweep(tmp_path, toy_root)
    plan = load(tmp_path / "tiny.yaml", grid=["train.objective.edge_weight=0,2", "train.schedule.lr=0.001"], seeds="0,1",
                sets=["train.schedule.steps=3"])
    assert plan.variants == ["edge_weight=0,lr=0.001", "edge_weight=2,lr=0.001"]
    assert [r.name for r in plan.runs][:2] == ["edge_weight=0,lr=0.001-s0", "edge_weight=0,lr=0.001-s1"]
    assert {(r.recipe.train.objective.edge_weight, r.recipe.train.schedule.seed, r.recipe.train.schedule.steps) for r in plan.runs} == \
        {(0, 0, 3), (0, 1, 3), (2, 0, 3), (2, 1, 3)}


def test_a_second_sweep_into_the_same_folder_is_refused(tmp_path, toy_root):
    path = write_sweep(tmp_path, toy_root)
    with SweepLock(tmp_path / "runs" / "sw"):
        result = CliRunner().invoke(cli, ["sweep", str(path), "--root", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "another faderkit sweep is running" in result.output, result.output
    assert sorted(p.name for p in (tmp_path / "runs" / "sw").iterdir()) == [".lock"]


def test_failed_run_recorded_finished_ones_never_repeated(tmp_path, toy_root):
    """One variant fails (its data root cannot be created); the other is trained and evaluated once, and a
    second start repeats neither the finished training nor the finished eval."""
    path = write_sweep(tmp_path, toy_root, variants=[
        {"name": "ok"}, {"name": "broken", "set": {"data.root": "/dev/null/faces"}}])
    report_md = sweep(path, tmp_path / "runs", jobs=2)
    folder = report_md.parent
    status = {n: json.loads((folder / "status" / f"{n}.json").read_text()) for n in ("ok-s0", "broken-s0")}
    assert status["ok-s0"]["state"] == "done"
    assert status["broken-s0"]["state"] == "failed" and status["broken-s0"]["stage"] == "train"
    assert status["broken-s0"]["error"].startswith("Error:")
    text = report_md.read_text()
    assert "## Runs that did not finish" in text and "`broken-s0`: failed in train: Error:" in text
    eval_report = folder / "ok-s0" / "eval_test" / "report.json"
    ckpt = folder / "ok-s0" / "best.safetensors"
    stamps = (eval_report.stat().st_mtime_ns, ckpt.stat().st_mtime_ns)
    sweep(path, tmp_path / "runs")
    assert (eval_report.stat().st_mtime_ns, ckpt.stat().st_mtime_ns) == stamps
    log = (folder / "logs" / "ok-s0.log").read_text()
    assert log.count("$ faderkit train") == 1 and log.count("$ faderkit eval") == 1
    assert (folder / "logs" / "broken-s0.log").read_text().count("$ faderkit train") == 2  # a failed run is retried
    shutil.rmtree(folder / "ok-s0")  # removed by hand: its status still says trained, and it is trained again
    sweep(path, tmp_path / "runs")
    assert ckpt.is_file() and eval_report.is_file()
    assert (folder / "logs" / "ok-s0.log").read_text().count("$ faderkit train") == 2


def test_a_run_killed_mid_training_is_resumed_and_a_finished_one_only_evaluated(tmp_path, toy_root):
    path = write_sweep(tmp_path, toy_root, variants=[{"name": "a"}, {"name": "b", "set": {"train.schedule.steps": 8}}])
    plan = load(path)
    folder = tmp_path / "runs" / "sw"
    from faderkit.recipe import to_yaml
    from faderkit.train import train

    # as a killed sweep leaves them: run a trained but not evaluated, run b half trained (no status)
    train(plan.runs[0].recipe, folder / "a-s0", progress=False, log=lambda m: None)
    half = plan.runs[1].recipe.model_copy(deep=True)
    half.train.schedule.steps = 4
    train(half, folder / "b-s0", progress=False, log=lambda m: None)
    (folder / "status").mkdir()
    (folder / "status" / "a-s0.json").write_text(json.dumps({"trained": True}))
    run_sweep(plan, tmp_path / "runs", threads=1)
    logs = {n: (folder / "logs" / f"{n}.log").read_text() for n in ("a-s0", "b-s0")}
    assert "$ faderkit train" not in logs["a-s0"] and "$ faderkit eval" in logs["a-s0"]
    assert "--resume" in logs["b-s0"]
    steps = [r["step"] for r in read_records(folder / "b-s0" / "metrics.jsonl") if "loss_rec" in r]
    assert steps == sorted(set(steps)) and max(steps) == 8  # resumed to 8, no step twice
    assert to_yaml(plan.runs[1].recipe).replace("threads: null", "threads: 1") == \
        (folder / "recipes" / "b-s0.yaml").read_text()


def test_report_marks_noise_real_and_targets():
    runs = {f"{v}-s{s}": {"variant": v, "seed": s, "state": "done"} for v in ("ref", "x") for s in (0, 1)}
    figs = {"ref-s0": {"recon_psnr": 24.0, "probe_gap.Male": 2}, "ref-s1": {"recon_psnr": 24.4, "probe_gap.Male": 12},
            "x-s0": {"recon_psnr": 25.2, "probe_gap.Male": 6}, "x-s1": {"recon_psnr": 25.1, "probe_gap.Male": 7}}
    targets = [{"figure": "probe_gap.Male", "variant": None, "min": None, "max": 10}]
    s = report.summarise(["ref", "x"], runs, figs, targets)
    assert s["figures"]["x"]["recon_psnr"]["verdict"] == "real"   # +0.95 dB against spreads 0.4 and 0.1
    assert s["figures"]["x"]["probe_gap.Male"]["verdict"] == "noise"  # -0.5 against a spread of 10
    assert [t["met"] for t in s["targets"]] == [True, True]
    only_x = report.summarise(["x"], {k: v for k, v in runs.items() if k.startswith("x")},
                              {k: v for k, v in figs.items() if k.startswith("x")},
                              [{"figure": "recon_psnr", "variant": "ref", "min": 1}])
    assert only_x["targets"] == []  # a target on a variant left out by --only is not judged
    one = report.summarise(["ref", "x"], {k: v for k, v in runs.items() if k.endswith("s0")},
                           {k: v for k, v in figs.items() if k.endswith("s0")}, [])
    assert one["figures"]["x"]["recon_psnr"]["verdict"] == "?"  # one seed: no spread to judge by
    md = report.markdown(s, "t", [])
    assert "| x | 2/2 |" in md and "| probe_gap.Male | x | 6.0, 7.0 | 6.5 | 1.0 | -0.5 | noise |" in md


def test_figures_read_an_eval_report(trained_run):
    from faderkit.evaluate import evaluate

    r = evaluate(trained_run / "best.safetensors", None, limit=6, gt_images=4, probe_epochs=2, device="cpu")
    f = figures(r)
    assert {"recon_psnr", "probe_gap.Smiling", "progress.Eyeglasses", "swap.Smiling.0->1", "swap_mean"} <= set(f)
    assert f["recon_psnr"] == r["reconstruction"]["psnr"]
    assert f["probe_gap.Smiling"] == pytest.approx(100 * r["latent_probe"]["per_attribute"]["Smiling"]["gap"])


def test_executors_are_registered_like_any_plugin():
    from faderkit.plugins import registries

    reg = registries()["executor"]
    assert {"local", "ray"} <= set(reg.list())
    assert reg.get("local").plugin == "executors"
    with pytest.raises(FaderkitError, match="unknown executor 'nope'; choose one of: local"):
        reg.get("nope")


def test_a_full_disk_fails_that_run_cleanly_and_leaves_the_others(tmp_path, toy_root, monkeypatch):
    """The run named full-s0 gets a 40 kB file-size limit (writes past it fail with EFBIG, as on a full disk)."""
    import sys

    from faderkit.sweep import runner

    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/bash\ncase \"$*\" in *full-s0*) ulimit -f 40; trap '' XFSZ;; esac\n"
                       f"exec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(runner.sys, "executable", str(wrapper))
    path = write_sweep(tmp_path, toy_root, variants=[{"name": "ok"}, {"name": "full"}])
    folder = sweep(path, tmp_path / "runs", jobs=2).parent
    full = json.loads((folder / "status" / "full-s0.json").read_text())
    assert full["state"] == "failed" and full["error"].startswith("Error:"), full
    assert json.loads((folder / "status" / "ok-s0.json").read_text())["state"] == "done"
    assert (folder / "ok-s0" / "eval_test" / "report.json").is_file()
    assert not [p for p in (folder / "full-s0").rglob(".*.tmp*")]  # no half-written file left behind


SHIPPED_SWEEPS = sorted((Path(__file__).parents[1] / "recipes" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED_SWEEPS, ids=lambda p: p.name)
def test_every_shipped_sweep_file_plans_each_variant_over_its_seeds(path):
    """A misspelled key or a bad value in any variant of a shipped sweep fails here, not an hour into a sweep."""
    planned = load(path)
    raw = yaml.safe_load(path.read_text())
    variants = [v["name"] for v in raw["variants"]] if "variants" in raw else None
    seeds = raw.get("seeds", [0])
    if variants is not None:
        assert planned.variants == variants
        assert len(planned.runs) == len(variants) * len(seeds)
    for run in planned.runs:
        assert run.recipe.train.schedule.seed in seeds


def test_the_shipped_sweeps_are_found():
    assert {"edits.yaml", "precision.yaml", "skip.yaml", "third_round.yaml"} <= {p.name for p in SHIPPED_SWEEPS}
