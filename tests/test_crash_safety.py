"""Crash safety: training killed with SIGKILL at random moments and resumed each time ends exactly
like a run that was never stopped; a full disk mid-run; two trainers on one run directory."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from faderkit import FaderkitError, atomic
from faderkit import checkpoint as ckpt
from faderkit.recipe import validate
from faderkit.train import train

from conftest import tiny_recipe

STEPS = 90
KILLS = 7


def write_recipe(root: Path, path: Path, **train_settings) -> Path:
    settings = {"steps": STEPS, "checkpoint_every": 3, "log_every": 1, "eval_every": 10, "sample_every": 10,
                "threads": 1, **train_settings}
    raw = tiny_recipe(root, **settings)
    path.write_text(yaml.safe_dump(raw))
    return path


def start(recipe: Path, run: Path, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "faderkit.cli", "train", str(recipe), "--run-dir", str(run), "--quiet", *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def records(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line being written when the process died; trimmed on resume
    return out


def last_logged_step(run: Path) -> int:
    return max((r["step"] for r in records(run) if "loss_rec" in r), default=0)


def temp_files(run: Path) -> list[str]:
    return [p.name for p in [*run.glob(".*.tmp*"), *run.glob("samples/.*.tmp*")]]


def losses(run: Path) -> dict[int, dict]:
    return {r["step"]: {k: v for k, v in r.items() if k != "images_per_s"} for r in records(run) if "loss_rec" in r}


def test_sigkill_at_random_moments_then_resume_ends_as_if_never_stopped(toy_root, tmp_path):
    rng = random.Random(6)
    recipe = write_recipe(toy_root, tmp_path / "r.yaml")
    reference = start(recipe, tmp_path / "reference")
    assert reference.wait(timeout=300) == 0, reference.stderr.read()

    run, kills, t0 = tmp_path / "run", [], time.perf_counter()
    for attempt in range(KILLS + 5):
        proc = start(recipe, run, *(["--resume"] if run.exists() else []))
        if len(kills) < KILLS:
            # A random moment, in turn: at a random time of the start (imports, data, classifier, first
            # steps); the moment a checkpoint is being written (if the poll catches one); a random few
            # steps after where the last life left off. Never over 6 steps on: the run must not finish
            # before the last kill.
            mode = ("start", "mid-write", "steps")[attempt % 3]
            target = last_logged_step(run) + (rng.randint(1, 6) if mode == "steps" else 6)
            until = time.monotonic() + (rng.uniform(0.3, 4.0) if mode == "start" else 600)
            while proc.poll() is None and last_logged_step(run) < target and time.monotonic() < until:
                if mode == "mid-write" and any(run.glob(".*.safetensors.tmp*")):
                    break
                time.sleep(0.0005 if mode == "mid-write" else 0.002)
            if mode != "mid-write":
                time.sleep(rng.uniform(0, 0.01))
        if len(kills) < KILLS and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            saved = ckpt.read_meta(run / "last.safetensors")["step"] if (run / "last.safetensors").exists() else None
            kills.append({"logged": last_logged_step(run), "checkpoint": saved, "writing": temp_files(run)})
            for path in run.glob("*.safetensors"):  # a checkpoint under its real name is always whole
                ckpt.load(path)
            continue
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
        break
    seconds = time.perf_counter() - t0

    assert len(kills) == KILLS
    assert ckpt.read_meta(run / "last.safetensors")["step"] == STEPS
    train_steps = [r["step"] for r in records(run) if "loss_rec" in r]
    assert train_steps == list(range(1, STEPS + 1))  # none lost, none twice
    assert [r["step"] for r in records(run) if "valid_mse" in r] == list(range(10, STEPS + 1, 10))
    assert temp_files(run) == []
    for name in ("last", "best", "classifier"):
        got, _ = ckpt.load(run / f"{name}.safetensors")
        want, _ = ckpt.load(tmp_path / "reference" / f"{name}.safetensors")
        assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in want), name
    assert losses(run) == losses(tmp_path / "reference")
    print(f"\n{KILLS} SIGKILLs in {seconds:.1f} s, then a clean finish at step {STEPS}: "
          + ", ".join(f"killed after step {k['logged']} (checkpoint {k['checkpoint']}"
                      + (f", while writing {', '.join(k['writing'])})" if k["writing"] else ")") for k in kills)
          + f"; {sum(bool(k['writing']) for k in kills)} kills landed mid-write, their temporary files cleared on resume")


def test_a_full_disk_while_writing_a_checkpoint_keeps_the_previous_one(toy_root, trained_run, tmp_path, monkeypatch):
    real_write, writes = atomic.write, []

    def disk_fills_on_the_second_last_checkpoint(path, data, **kwargs):
        if Path(path).name == "last.safetensors":
            writes.append(path)
            if len(writes) == 2:
                def half_then_full(f):
                    f.write(data[: len(data) // 2])
                    raise OSError(errno.ENOSPC, "No space left on device")
                return real_write(path, half_then_full, **kwargs)
        return real_write(path, data, **kwargs)

    monkeypatch.setattr(atomic, "write", disk_fills_on_the_second_last_checkpoint)
    run = tmp_path / "run"
    with pytest.raises(FaderkitError, match=r"cannot write checkpoint .*last\.safetensors: No space left on device; "
                                            r"the previous one is intact"):
        train(validate(tiny_recipe(toy_root)), run, progress=False, log=lambda m: None)
    monkeypatch.undo()
    assert ckpt.load(run / "last.safetensors")[1]["step"] == 4  # checkpoint_every 4: the one at step 8 failed
    assert temp_files(run) == []

    train(validate(tiny_recipe(toy_root)), run, resume=True, progress=False, log=lambda m: None)
    got, _ = ckpt.load(run / "last.safetensors")
    want, _ = ckpt.load(trained_run / "last.safetensors")
    assert all(torch.equal(got[k], want[k]) for k in want)
    steps = [r["step"] for r in records(run) if "loss_rec" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 12


def test_a_second_trainer_on_the_same_run_directory_refuses(toy_root, tmp_path):
    recipe = write_recipe(toy_root, tmp_path / "r.yaml", steps=1_000_000)  # still running when the others start
    run = tmp_path / "run"
    first = start(recipe, run)
    try:
        deadline = time.monotonic() + 120
        while last_logged_step(run) < 2:
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read() if first.poll() else "slow"
            time.sleep(0.01)
        before = last_logged_step(run)
        for extra in ((), ("--resume",)):
            second = start(recipe, run, *extra)
            out, err = second.communicate(timeout=120)
            assert second.returncode == 2 and out == "", (extra, second.returncode, err)
            assert err.strip().splitlines() == [f"Error: another faderkit process is training in {run}; "
                                                "wait for it or use another --run-dir"]
        assert first.poll() is None and last_logged_step(run) >= before  # the first one never noticed
    finally:
        first.kill()
        first.wait()


@pytest.mark.parametrize("where", ["before the recipe", "in the classifier"])
def test_a_start_stopped_early_leaves_no_run_or_one_resume_continues(toy_root, tmp_path, monkeypatch, where):
    """Ctrl-C during a run's start: never a folder that is neither blank nor resumable (a sweep resumes
    every run folder it finds, and one with metrics but no recipe could not be)."""
    from faderkit import rundir
    from faderkit.train import trainer as trainer_module

    recipe = validate(tiny_recipe(toy_root, steps=4, eval_every=4, sample_every=4))
    run = tmp_path / "run"
    if where == "before the recipe":
        real = rundir.RunDir.write_recipe

        def stop(self, text):
            monkeypatch.setattr(rundir.RunDir, "write_recipe", real)
            raise KeyboardInterrupt

        monkeypatch.setattr(rundir.RunDir, "write_recipe", stop)
    else:
        real = trainer_module.train_classifier

        def stop(*a, **k):
            monkeypatch.setattr(trainer_module, "train_classifier", real)
            raise KeyboardInterrupt

        monkeypatch.setattr(trainer_module, "train_classifier", stop)
    with pytest.raises(KeyboardInterrupt):
        train(recipe, run, progress=False, log=lambda m: None)
    if where == "before the recipe":
        assert not run.exists()  # nothing was written yet: nothing is left
    else:
        assert (run / "recipe.yaml").is_file() and (run / "metrics.jsonl").is_file()
    train(recipe, run, resume=run.is_dir(), progress=False, log=lambda m: None)  # as a sweep's rerun does
    assert ckpt.read_meta(run / "last.safetensors")["step"] == 4
