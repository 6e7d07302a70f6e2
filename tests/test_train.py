import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image

from faderkit import FaderkitError, checkpoint
from faderkit.cli import cli
from faderkit.recipe import validate
from faderkit.train import lambda_at, lr_at, train

from conftest import tiny_recipe


def test_run_directory_is_self_describing(trained_run):
    saved = yaml.safe_load((trained_run / "recipe.yaml").read_text())
    assert saved["train"]["schedule"]["steps"] == 12 and saved["data"]["attributes"] == ["Smiling", "Eyeglasses"]
    records = [json.loads(l) for l in (trained_run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "loss_rec" in r]
    assert steps == [2, 4, 6, 8, 10, 12]
    assert all(r["images_per_s"] > 0 and r["loss_rec"] >= 0 for r in records if "loss_rec" in r)
    assert [r["step"] for r in records if "valid_mse" in r] == [6, 12]
    assert "valid_swap" in records[-1]
    assert sorted(p.name for p in (trained_run / "samples").iterdir()) == ["change_maps.png", "step_000006.png",
                                                                           "step_000012.png"]
    with Image.open(trained_run / "samples" / "change_maps.png") as im:  # maps over masks, one column an attribute
        maps = np.asarray(im.convert("L"))
    assert im.size == (2 + 2 * 34, 12 + 2 + 2 * 34)
    stored = checkpoint.load(trained_run / "last.safetensors")[0]["change_maps"]
    assert np.abs(maps[14:46, 2:34].astype(int) - (stored[0].numpy() * 255).round()).max() <= 1  # Smiling's map


def test_checkpoints_carry_recipe_attributes_and_versions(trained_run):
    for name in ("best", "last"):
        tensors, meta = checkpoint.load(trained_run / f"{name}.safetensors")
        assert meta["kind"] == "fader" and [a["name"] for a in meta["attributes"]] == ["Smiling", "Eyeglasses"]
        assert meta["recipe"]["model"]["n_layers"] == 3 and meta["versions"]["torch"] == torch.__version__
        assert meta["preprocess"]["crop_box"] == [0, 20, 178, 198]
        assert any(k.startswith("classifier.") for k in tensors)
    assert checkpoint.read_meta(trained_run / "last.safetensors")["step"] == 12
    assert "opt_ae" in checkpoint.read_meta(trained_run / "last.safetensors")


def test_sample_grid_has_original_reconstruction_and_one_column_per_attribute(trained_run):
    from PIL import Image

    img = Image.open(trained_run / "samples" / "step_000012.png")
    cols = 2 + 2  # original, reconstruction, Smiling flipped, Eyeglasses flipped
    assert img.width == 2 + cols * (32 + 2)
    assert img.height == 2 + 6 * (32 + 2)  # the 6 validation images


def test_lambda_rises_linearly_then_holds():
    r = validate(tiny_recipe("x", lambda_e=0.5, lambda_warmup=10))
    assert [lambda_at(s, r.train.objective, r.train.adversary) for s in (0, 5, 10, 50)] == [0.0, 0.25, 0.5, 0.5]


def test_learning_rate_is_constant_or_falls_on_a_cosine_to_its_final_share():
    assert {lr_at(s, validate(tiny_recipe("x", lr=1e-3, steps=11)).train.schedule) for s in range(11)} == {1e-3}
    r = validate(tiny_recipe("x", lr=1e-3, steps=11, lr_schedule="cosine", lr_final=0.1))
    lrs = [lr_at(s, r.train.schedule) for s in range(11)]
    assert lrs[0] == pytest.approx(1e-3) and lrs[5] == pytest.approx(0.55e-3) and lrs[10] == pytest.approx(1e-4)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_l1_reconstruction_loss_is_the_mean_absolute_error(toy_root, tmp_path):
    """Same seed, same first batch and model: the first step's loss is |e| averaged instead of e^2, so
    (Jensen) l1^2 <= mse, and the two differ."""
    first = {}
    for loss in ("mse", "l1"):
        run = tmp_path / loss
        train(validate(tiny_recipe(toy_root, steps=1, log_every=1, rec_loss=loss)), run, progress=False, log=lambda m: None)
        first[loss] = next(json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l)["loss_rec"]
    assert first["l1"] ** 2 <= first["mse"] and first["l1"] != pytest.approx(first["mse"], rel=0.05)


def test_edge_loss_ignores_an_even_error_and_weighs_a_misplaced_line():
    from faderkit.train.reconstruction import edge_loss, reconstruction_loss

    line = -torch.ones(1, 3, 16, 16)
    line[..., 8, :] = 1.0
    moved = line.roll(1, dims=2)
    assert float(edge_loss(line, line)) == 0 and float(reconstruction_loss(line, line)) == 0
    # an error spread evenly over the image has no edges: the edge term ignores it
    assert float(edge_loss(torch.full_like(line, 0.3), torch.full_like(line, -0.2))) == 0
    # a thin line drawn one pixel off: its edges are wrong at twice as many places as its pixels
    pixels, edge = float(reconstruction_loss(moved, line)), float(edge_loss(moved, line))
    assert pixels > 0 and edge > pixels


def test_edge_weight_adds_the_edge_term_to_the_autoencoders_loss(toy_root, tmp_path):
    logs = {}
    for weight in (0.0, 2.0):
        run = tmp_path / str(weight)
        train(validate(tiny_recipe(toy_root, steps=2, log_every=1, edge_weight=weight)), run, progress=False,
              log=lambda m: None)
        logs[weight] = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "loss_rec" in l]
    assert all("loss_edges" not in m for m in logs[0.0])
    assert all(m["loss_edges"] > 0 for m in logs[2.0])
    # the first step's pixel loss is the same (same seed and batch); the second differs: the update saw the edges
    assert logs[2.0][0]["loss_rec"] == pytest.approx(logs[0.0][0]["loss_rec"])
    assert logs[2.0][1]["loss_rec"] != pytest.approx(logs[0.0][1]["loss_rec"], rel=1e-6)


def test_select_by_last_takes_every_evaluation_even_a_worse_one():
    from faderkit.train.validation import improves

    worse, better = {"valid_mse": 0.5}, {"valid_mse": 0.1}
    assert not improves(worse, -0.2, "reconstruction") and improves(better, -0.2, "reconstruction")
    assert improves(worse, -0.2, "last") and improves(worse, None, "swap")


def test_select_by_last_keeps_the_latest_weights_as_best(toy_root, tmp_path):
    run = tmp_path / "run"
    train(validate(tiny_recipe(toy_root, steps=10, eval_every=3, select_by="last")), run, progress=False,
          log=lambda m: None)
    evals = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if "valid_mse" in l]
    assert [e["step"] for e in evals] == [3, 6, 9, 10] and all(e["best"] for e in evals)
    best, _ = checkpoint.load(run / "best.safetensors")
    last, _ = checkpoint.load(run / "last.safetensors")
    model = [k for k in best if k.startswith("model.")]
    assert model and all(torch.equal(best[k], last[k]) for k in model)
    assert checkpoint.read_meta(run / "best.safetensors")["step"] == 10


def test_refuses_existing_run_dir_and_resumes_to_planned_steps(toy_root, tmp_path):
    run = tmp_path / "run"
    recipe = validate(tiny_recipe(toy_root, steps=8))
    train(recipe, run, progress=False, log=lambda m: None)
    before = (run / "best.safetensors").read_bytes()
    with pytest.raises(FaderkitError, match="already holds a run"):
        train(recipe, run, progress=False, log=lambda m: None)
    assert (run / "best.safetensors").read_bytes() == before
    longer = validate(tiny_recipe(toy_root, steps=12))
    train(longer, run, resume=True, progress=False, log=lambda m: None)
    assert checkpoint.read_meta(run / "last.safetensors")["step"] == 12
    steps = [json.loads(l)["step"] for l in (run / "metrics.jsonl").read_text().splitlines()
             if "loss_rec" in l]
    assert steps == sorted(set(steps)) and steps[-1] == 12


def _train_losses(run):
    return [{k: v for k, v in r.items() if k != "images_per_s"}
            for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss_rec" in r]


def test_a_resumed_run_equals_the_uninterrupted_one_bit_for_bit(toy_root, trained_run, tmp_path):
    run = tmp_path / "run"
    train(validate(tiny_recipe(toy_root, steps=5)), run, progress=False, log=lambda m: None)  # stops mid-warm-up
    train(validate(tiny_recipe(toy_root)), run, resume=True, progress=False, log=lambda m: None)
    resumed, _ = checkpoint.load(run / "last.safetensors")
    straight, _ = checkpoint.load(trained_run / "last.safetensors")
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)
    logged = {r["step"]: r for r in _train_losses(run)}
    assert all(logged[r["step"]] == r for r in _train_losses(trained_run))  # step 5 is logged too: it ended there


def test_resume_before_the_first_checkpoint_starts_over(toy_root, trained_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.yaml").write_text("# a start killed before its first checkpoint\n")
    with pytest.raises(FaderkitError, match="already holds a run; pass --resume"):
        train(validate(tiny_recipe(toy_root)), run, progress=False, log=lambda m: None)
    train(validate(tiny_recipe(toy_root)), run, resume=True, progress=False, log=lambda m: None)
    resumed, _ = checkpoint.load(run / "last.safetensors")
    straight, _ = checkpoint.load(trained_run / "last.safetensors")
    assert all(torch.equal(resumed[k], straight[k]) for k in straight)


def test_a_failed_start_leaves_no_run_directory_behind(toy_copy, tmp_path):
    (toy_copy / "list_eval_partition.txt").unlink()
    run = tmp_path / "runs" / "new"
    with pytest.raises(FaderkitError, match="list_eval_partition.txt"):
        train(validate(tiny_recipe(toy_copy)), run, progress=False, log=lambda m: None)
    assert not (tmp_path / "runs").exists()  # so the same command works once the data is fixed


def test_resume_with_another_architecture_is_refused(toy_root, trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    raw = tiny_recipe(toy_root, steps=20)
    raw["model"]["init_fm"] = 16
    with pytest.raises(FaderkitError, match="trained with model.init_fm = 8, this recipe has 16"):
        train(validate(raw), run, resume=True, progress=False, log=lambda m: None)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_resume_without_a_checkpoint_is_refused(toy_root, tmp_path):
    with pytest.raises(FaderkitError, match="nothing to resume"):
        train(validate(tiny_recipe(toy_root)), tmp_path / "empty", resume=True, progress=False)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(toy_root, tmp_path, monkeypatch):
    from faderkit.train import reconstruction

    real = reconstruction.LOSSES["mse"]
    calls = {"n": 0}

    def poisoned(a, b, *args, **kw):
        calls["n"] += 1
        out = real(a, b, *args, **kw)
        return out * float("nan") if calls["n"] == 6 else out

    monkeypatch.setitem(reconstruction.LOSSES, "mse", poisoned)
    run = tmp_path / "run"
    with pytest.raises(FaderkitError, match=r"became nan at step 5.*step 4"):
        train(validate(tiny_recipe(toy_root, steps=12, eval_every=100, sample_every=100)), run,
              progress=False, log=lambda m: None)
    tensors, meta = checkpoint.load(run / "last.safetensors")
    assert meta["step"] == 4
    assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())


def test_cli_train_refuses_existing_run_dir_in_one_line(toy_root, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(toy_root, steps=2)))
    run = tmp_path / "run"
    run.mkdir()
    (run / "keep.txt").write_text("precious")
    result = CliRunner().invoke(cli, ["train", str(recipe), "--run-dir", str(run), "--quiet"])
    assert result.exit_code == 2 and "already holds a run" in result.output
    assert (run / "keep.txt").read_text() == "precious"


def test_cli_train_runs_and_prints_the_best_checkpoint(toy_root, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe(toy_root)))
    result = CliRunner().invoke(cli, ["train", str(recipe), "--set", "train.schedule.steps=4", "--run-dir",
                                      str(tmp_path / "run"), "--quiet", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].endswith("best.safetensors")
    assert checkpoint.read_meta(tmp_path / "run" / "last.safetensors")["step"] == 4


def test_missing_dataset_file_is_named(toy_copy, tmp_path):
    (toy_copy / "list_eval_partition.txt").unlink()
    with pytest.raises(FaderkitError, match="list_eval_partition.txt"):
        train(validate(tiny_recipe(toy_copy)), tmp_path / "run", progress=False)


def test_patch_discriminator_and_classifier_losses_train_and_resume(toy_root, tmp_path):
    raw = tiny_recipe(toy_root, steps=4, lambda_patch=0.1, lambda_clf=0.1)
    raw["model"]["patch_discriminator"] = {"name": "patch", "params": {"n_layers": 2, "init_fm": 8}}
    run = tmp_path / "run"
    train(validate(raw), run, progress=False, log=lambda m: None)
    records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [r for r in records if "loss_patch" in r]
    assert trained and all(r["loss_patch"] > 0 and r["loss_clf"] > 0 for r in trained)
    tensors, meta = checkpoint.load(run / "last.safetensors")
    assert any(k.startswith("patch.") for k in tensors) and "opt_patch" in meta
    raw["train"]["schedule"]["steps"] = 6
    train(validate(raw), run, resume=True, progress=False, log=lambda m: None)
    assert checkpoint.read_meta(run / "last.safetensors")["step"] == 6


def test_decoded_losses_need_their_networks(toy_root):
    with pytest.raises(FaderkitError, match="needs model.patch_discriminator"):
        validate(tiny_recipe(toy_root, lambda_patch=1.0))


def test_resume_clears_temporary_files_a_killed_writer_left(toy_root, trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    stale = [run / ".last.safetensors.tmp4242", run / "samples" / ".step_000006.png.tmp4242"]
    for p in stale:
        p.write_bytes(b"half a file")
    keep = run / "notes.tmp.txt"
    keep.write_text("not ours")
    train(validate(tiny_recipe(toy_root, steps=14)), run, resume=True, progress=False, log=lambda m: None)
    assert not any(p.exists() for p in stale) and keep.exists()


def test_resume_survives_a_hand_damaged_metrics_log(toy_root, trained_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('[1, 2]\nnull\n"text"\n{"step": "x"}\n{"step": null}\n{"step": 99, "loss_rec": 1}\n{"step": 3, "lo')
    train(validate(tiny_recipe(toy_root, steps=14)), run, resume=True, progress=False, log=lambda m: None)
    records = [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(isinstance(r, dict) and isinstance(r["step"], int) for r in records)
    steps = [r["step"] for r in records if "loss_rec" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 14 and 99 not in steps
