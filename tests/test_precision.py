"""train.speed.amp: how auto, off, bf16 and fp16 resolve per device, the CPU calibration's cache, what a run
says and stores about its precision, and that a resumed run keeps it."""

import json

import pytest
import torch
import yaml
from click.testing import CliRunner

from faderkit import FaderkitError, checkpoint, precision
from faderkit.cli import cli
from faderkit.recipe import load_recipe, validate
from faderkit.train import Trainer, train
from faderkit.train.optim import update, with_scaler

from conftest import tiny_recipe

CPU = torch.device("cpu")


@pytest.mark.parametrize("text", ["off", "false", '"off"', "'off'", "no", "fp32"])
def test_yaml_off_in_every_spelling_is_fp32(text, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(f"data: {{name: toyfaces, root: {tmp_path}}}\ntrain: {{speed: {{amp: {text}}}}}\n")
    assert load_recipe(path).train.speed.amp == "off"
    assert load_recipe(path, [f"train.speed.amp={text}"]).train.speed.amp == "off"  # --set train.speed.amp=off
    assert precision.resolve(load_recipe(path).train.speed.amp, CPU).name == "fp32"


def test_amp_defaults_to_auto_and_refuses_true_and_unknown_names(tmp_path):
    assert validate({"data": {"name": "toyfaces", "root": str(tmp_path)}}).train.speed.amp == "auto"
    for bad, said in ((True, "ambiguous"), ("fp8", "'auto', 'off', 'bf16' or 'fp16'")):
        with pytest.raises(FaderkitError, match=said):
            validate({"data": {"name": "toyfaces", "root": str(tmp_path)}, "train": {"speed": {"amp": bad}}})


def test_explicit_choices_and_what_a_cpu_cannot_do():
    assert precision.resolve("bf16", CPU).dtype == torch.bfloat16
    assert precision.resolve("off", CPU).autocast().__dict__.get("_enabled") is False
    assert precision.resolve("bf16", CPU).grad_scaler() is None
    with pytest.raises(FaderkitError, match="fp16 needs a CUDA GPU"):
        precision.resolve("fp16", CPU)


def test_auto_on_a_cpu_without_bf16_units_is_fp32_without_calibrating(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "fma"})
    monkeypatch.setattr(precision, "calibrate", lambda: pytest.fail("calibrated a CPU that emulates bf16"))
    p = precision.resolve("auto", CPU)
    assert p.name == "fp32" and "no bf16 units" in p.why


@pytest.mark.parametrize("ratio,pick", [(0.3, "bf16"), (0.95, "fp32"), (2.0, "fp32")])
def test_auto_follows_the_calibration_once_per_machine(ratio, pick, monkeypatch, tmp_path):
    monkeypatch.setenv("FADERKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16", "amx_bf16"})
    calls = []
    monkeypatch.setattr(precision, "calibrate", lambda: calls.append(1) or {"ratio": ratio})
    assert precision.resolve("auto", CPU).name == pick
    assert precision.resolve("auto", CPU).name == pick
    assert calls == [1]  # the second run read the cache
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert [v["ratio"] for v in cached.values()] == [ratio]
    (tmp_path / "precision.json").write_text("{not json")  # a damaged cache: measured again, not an error
    assert precision.resolve("auto", CPU).name == pick and calls == [1, 1]


def test_the_real_calibration_measures_both_precisions():
    result = precision.calibrate(repeats=1)
    assert result["fp32_s"] > 0 and result["bf16_s"] > 0
    assert result["ratio"] == pytest.approx(result["bf16_s"] / result["fp32_s"], rel=1e-2)


def test_auto_keeps_a_resumed_runs_stored_precision_unless_the_device_cannot(monkeypatch):
    monkeypatch.setattr(precision, "_cpu_auto", lambda: precision.Precision("fp32", "cpu", "auto: test"))
    assert precision.resolve("auto", CPU, stored="bf16").name == "bf16"
    assert precision.resolve("auto", CPU, stored="fp16").name == "fp32"  # an fp16 GPU run resumed on a CPU
    assert precision.resolve("off", CPU, stored="bf16").name == "fp32"  # an explicit choice wins


def test_fp16_scaler_goes_through_the_one_update(monkeypatch):
    """update() with a GradScaler: the loss scaled, gradients unscaled before clipping, a step with an inf
    gradient skipped and the scale lowered (torch's CPU GradScaler stands in for CUDA's)."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = with_scaler(torch.optim.SGD([w], lr=0.1), torch.amp.GradScaler("cpu", init_scale=1024.0))
    update(opt, (w * torch.tensor([1.0, 2.0, 3.0])).sum(), [w], clip=100.0)
    assert torch.allclose(w.detach(), torch.tensor([0.9, 0.8, 0.7]))  # unscaled: as an fp32 step
    before = opt.grad_scaler.get_scale()
    update(opt, (w * torch.tensor([float("inf"), 0.0, 0.0])).sum(), [w], clip=100.0)
    assert torch.allclose(w.detach(), torch.tensor([0.9, 0.8, 0.7]))  # skipped
    assert opt.grad_scaler.get_scale() < before


def _train(root, run, log, resume=False, **settings):
    recipe = validate(tiny_recipe(root, **settings))
    return Trainer(recipe, run, resume=resume, device="cpu", progress=False, log=log.append).run_training()


def test_first_log_line_metrics_and_checkpoints_name_device_and_precision(toy_root, tmp_path):
    log = []
    _train(toy_root, tmp_path / "run", log, steps=4, amp="bf16")
    assert log[0].startswith("device: cpu (") and "; precision: bf16 (train.speed.amp bf16)" in log[0]
    assert not any(line.startswith("warning") for line in log)  # 32 px: no GPU recipe
    first = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["precision"] == "bf16" and first["device"].startswith("cpu")
    for name in ("best", "last", "classifier"):
        assert checkpoint.read_meta(tmp_path / "run" / f"{name}.safetensors")["precision"] == "bf16"


def test_resume_keeps_the_runs_precision(toy_root, tmp_path, monkeypatch):
    log = []
    _train(toy_root, tmp_path / "run", log, steps=4, amp="bf16")
    # the machine now says fp32, the recipe says auto: the run goes on in bf16
    monkeypatch.setattr(precision, "_cpu_auto", lambda: precision.Precision("fp32", "cpu", "auto: test"))
    log = []
    _train(toy_root, tmp_path / "run", log, resume=True, steps=8, amp="auto")
    assert "precision: bf16 (auto: the run's own precision, from its checkpoint)" in log[0]
    assert checkpoint.read_meta(tmp_path / "run" / "last.safetensors")["precision"] == "bf16"
    assert checkpoint.read_meta(tmp_path / "run" / "last.safetensors")["step"] == 8


def test_a_gpu_sized_recipe_on_the_cpu_is_said_plainly():
    from faderkit.device import gpu_recipe_on_cpu

    assert "256 px recipe is sized for a GPU" in gpu_recipe_on_cpu(CPU, 256)
    assert gpu_recipe_on_cpu(CPU, 64) is None


def test_print_recipe_shows_the_resolved_precision(toy_root, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(tiny_recipe(toy_root)))
    out = CliRunner().invoke(cli, ["train", str(path), "--print-recipe", "--device", "cpu",
                                   "--set", "train.speed.amp=off"])
    assert out.exit_code == 0, out.output
    assert "amp: 'off'" in out.output or "amp: off" in out.output
    assert out.output.rstrip().splitlines()[-1] == "# train.speed.amp off -> fp32 on cpu (train.speed.amp off)"
    assert yaml.safe_load(out.output)["train"]["speed"]["amp"] == "off"  # still a recipe
