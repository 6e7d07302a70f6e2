"""TensorBoard events beside metrics.jsonl: written where metrics are recorded, read back here."""

from __future__ import annotations

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from faderkit import tracking
from faderkit.rundir import RunDir, read_records


def events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    return acc


def test_a_run_writes_its_metrics_and_sample_grids_as_events(trained_run):
    acc = events(trained_run)
    records = [r for r in read_records(trained_run / "metrics.jsonl") if "loss_rec" in r]
    got = acc.Scalars("loss_rec")
    assert [e.step for e in got] == [r["step"] for r in records]
    assert [e.value for e in got] == pytest.approx([r["loss_rec"] for r in records])
    assert "classifier_valid_accuracy/Smiling" in acc.Tags()["scalars"]  # nested records become a/b tags
    assert sorted(e.step for e in acc.Images("samples")) == [6, 12]  # the grids in samples/


def test_eval_writes_its_figures_at_the_checkpoint_step(trained_run, tmp_path):
    from faderkit.evaluate import evaluate

    report = evaluate(trained_run / "best.safetensors", tmp_path / "ev", limit=6, gt_images=4, probe_epochs=2,
                      device="cpu")
    acc = events(tmp_path / "ev")
    psnr = acc.Scalars("eval/recon_psnr")
    assert [(e.step, round(e.value, 4)) for e in psnr] == [(report["checkpoint"]["step"],
                                                             round(report["reconstruction"]["psnr"], 4))]
    assert "eval/probe_gap/Smiling" in acc.Tags()["scalars"]


def test_resumed_events_hide_the_steps_dropped_from_metrics(tmp_path):
    run = RunDir(tmp_path / "r")
    run.open(resume=False)
    run.write_recipe("data: {}\n")
    for step in (1, 2, 3):
        run.log({"step": step, "loss": float(step)})
    run.close()
    again = RunDir(tmp_path / "r")
    again.open(resume=True)
    again.truncate_metrics(1)
    again.log({"step": 2, "loss": 20.0})
    again.close()
    assert [(e.step, e.value) for e in events(tmp_path / "r").Scalars("loss")] == [(1, 1.0), (2, 20.0)]


def test_turned_off_or_missing_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(tracking.DISABLE_ENV, "0")
    run = RunDir(tmp_path / "r")
    run.open(resume=False)
    run.log({"step": 1, "loss": 1.0})
    run.close()
    assert not list((tmp_path / "r").glob("events.*"))
