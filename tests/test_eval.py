"""faderkit eval, slider sweeps, curves, and the image metrics under them."""

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from scipy.signal import convolve2d

import faderkit
from faderkit import checkpoint as ckpt
from faderkit.cli import cli
from faderkit.curves import plot_curves
from faderkit.evaluate import EVAL_CLASSIFIER, majority_rate
from faderkit.tiles import HEADER, PAD
from faderkit.sliders import parse_values
from faderkit.imageio import to_unit
from faderkit.interfaces import Attribute
from faderkit.metrics import gaussian_window, psnr, ssim

S = 32  # the tiny run's image size
KEYS = {"reconstruction", "swap_accuracy", "preservation", "latent_probe", "ground_truth",
        "classifier", "split", "alpha", "checkpoint", "output_modes"}
MODES = ("local", "residual", "clean", "decoded")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, message):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], result.output


# ---------------------------------------------------------------- metrics

def test_psnr_on_known_inputs():
    x = torch.zeros(2, 3, 16, 16)
    y = torch.full_like(x, 0.1)  # MSE 0.01 -> 20 dB
    assert psnr(x, y).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    y[1] = 0.01  # MSE 1e-4 -> 40 dB
    assert psnr(x, y)[1].item() == pytest.approx(40.0, abs=1e-3)
    assert psnr(x, x).tolist() == [100.0, 100.0]  # capped, never inf


def _reference_ssim(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al.'s SSIM written out with a 2-D 'valid' convolution, one channel at a time."""
    w = np.outer(*(2 * [gaussian_window().numpy()]))
    c1, c2 = 0.01**2, 0.03**2
    out = []
    for a, b in zip(x, y):
        f = lambda t: convolve2d(t, w, mode="valid")  # noqa: E731
        ma, mb = f(a), f(b)
        va, vb, cov = f(a * a) - ma**2, f(b * b) - mb**2, f(a * b) - ma * mb
        out.append((((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))).mean())
    return float(np.mean(out))


def test_ssim_matches_the_standard_definition():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 20, generator=g, dtype=torch.float64)
    y = (x + 0.1 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    got = ssim(x, y)
    for i in range(2):
        assert got[i].item() == pytest.approx(_reference_ssim(x[i].numpy(), y[i].numpy()), abs=1e-5)


def test_ssim_identity_noise_symmetry_and_constant_images():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 3, 32, 32, generator=g)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    slight = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    heavy = (x + 0.3 * torch.randn(x.shape, generator=g)).clamp(0, 1)
    assert 1.0 > ssim(x, slight).item() > ssim(x, heavy).item()
    assert ssim(x, heavy).item() == pytest.approx(ssim(heavy, x).item(), abs=1e-6)
    a, b = 0.2, 0.6  # flat images: SSIM reduces to the luminance term (2ab + C1) / (a^2 + b^2 + C1)
    flat = ssim(torch.full((1, 3, 16, 16), a), torch.full((1, 3, 16, 16), b)).item()
    assert flat == pytest.approx((2 * a * b + 1e-4) / (a * a + b * b + 1e-4), abs=1e-5)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_majority_rate_uses_the_train_splits_most_frequent_value():
    attrs = [Attribute("A"), Attribute("C", ("r", "g", "b"))]
    train = torch.tensor([[0, 2], [0, 2], [1, 0]])
    test = torch.tensor([[1, 2], [1, 1], [0, 1], [0, 1]])  # majority A=0 on train: right on half of test
    assert majority_rate(train, test, attrs) == [0.5, 0.25]


# ---------------------------------------------------------------- the evaluation

@pytest.fixture(scope="module")
def fresh_ckpt(trained_run, tmp_path_factory):
    """The tiny run's checkpoints copied aside, so the evaluation classifier is cached there, not in the shared run."""
    d = tmp_path_factory.mktemp("evalrun")
    for name in ("best.safetensors", "classifier.safetensors"):
        shutil.copy(trained_run / name, d / name)
    return d / "best.safetensors"


@pytest.fixture(scope="module")
def evaluated(fresh_ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "report"
    result = invoke("eval", fresh_ckpt, "--out", out, "--device", "cpu", "--threads", "1", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "report.md")
    return out, json.loads((out / "report.json").read_text())


def test_report_has_every_section_and_its_figures_in_range(evaluated, fresh_ckpt, toy_root):
    out, r = evaluated
    assert KEYS <= set(r)
    assert r["split"] == {"name": "test", "images": 6, "of": 6}
    assert r["alpha"]["values"] == {"0->1": 1.0, "1->0": 0.0}
    rc = r["reconstruction"]
    assert 0 <= rc["mse"] <= 1 and 0 < rc["psnr"] < 100 and -1 <= rc["ssim"] <= 1
    test_labels = _labels(toy_root, "test")
    assert r["output_modes"]["default"] == "local" and r["output_modes"]["change_maps"] is True and r["output_modes"]["modes"] == list(MODES)
    for i, name in enumerate(["Smiling", "Eyeglasses"]):
        for mode in MODES:
            sw = r["swap_accuracy"][mode]["per_attribute"][name]
            assert sw["n"] == {"0->1": int((test_labels[:, i] == 0).sum()), "1->0": int((test_labels[:, i] == 1).sum())}
            for d in ("0->1", "1->0"):
                assert sw[d] is None if sw["n"][d] == 0 else 0 <= sw[d] <= 1
            assert 0 <= r["preservation"][mode]["by_edited"][name] <= 1
        assert 0 <= r["classifier"]["accuracy"][name] <= 1
        lp = r["latent_probe"]["per_attribute"][name]
        assert 0 <= lp["accuracy"] <= 1 and lp["gap"] == pytest.approx(lp["accuracy"] - lp["majority_rate"], abs=1e-5)
    assert set(r["preservation"]["residual"]["matrix"]) == {"Smiling", "Eyeglasses"}
    c = r["classifier"]
    assert c["source"] == "trained" and c["independent"] and c["seed_offset"] == 1
    assert c["path"] == str(fresh_ckpt.parent / EVAL_CLASSIFIER)
    md = (out / "report.md").read_text()
    for heading in ("## Reconstruction", "## Swap accuracy and preservation", "## Latent probe", "## Ground truth"):
        assert heading in md


def _labels(root, split):
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    return ToyFaces(root, image_size=S, attributes=["Smiling", "Eyeglasses"]).split(split).labels


def test_reconstruction_figures_match_a_direct_computation(evaluated, fresh_ckpt, toy_root):
    _, r = evaluated
    model = faderkit.load(fresh_ckpt)
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    split = ToyFaces(toy_root, image_size=S, attributes=["Smiling", "Eyeglasses"]).split("test")
    x = to_unit(split.images(np.arange(len(split))))
    with torch.no_grad():
        rec = model.model.reconstruct(x, model.model.code(split.labels))
    assert r["reconstruction"]["mse"] == pytest.approx(((rec - x) / 2).pow(2).mean().item(), rel=1e-4)


def test_latent_probe_majority_rate_is_computed_from_the_data(evaluated, toy_root):
    _, r = evaluated
    train, test = _labels(toy_root, "train"), _labels(toy_root, "test")
    for i, name in enumerate(["Smiling", "Eyeglasses"]):
        mode = int(train[:, i].bincount(minlength=2).argmax())
        assert r["latent_probe"]["per_attribute"][name]["majority_rate"] == pytest.approx(
            float((test[:, i] == mode).float().mean()), abs=1e-6)


def test_ground_truth_section_for_toy_faces(evaluated):
    _, r = evaluated
    gt = r["ground_truth"]
    assert gt["available"] and gt["images"] == 6
    assert gt["render_vs_original_psnr"] > 30  # the stored faces are the renders, up to JPEG noise
    for mode in MODES:
        for name in ("Smiling", "Eyeglasses"):
            v = gt[mode]["per_attribute"][name]
            assert v["slider"]["values"] == [0.0, 0.25, 0.5, 0.75, 1.0]
            assert len(v["slider"]["l1"]) == 5 and all(0 <= e <= 1 for e in v["slider"]["l1"])
            assert v["slider"]["progress_render"][0] == 0 and v["slider"]["progress_render"][-1] == pytest.approx(1)
            assert 0 <= v["slider"]["monotone_fraction"] <= 1
            assert sum(d["n"] for d in v["flip"]["by_direction"].values()) == 6
            assert v["flip"]["psnr"] > 0
    # the renders are shared: both modes compare with the same targets, so doing nothing scores the same
    for name in ("Smiling", "Eyeglasses"):
        base = [gt[m]["per_attribute"][name]["flip"]["unedited_baseline"] for m in MODES]
        assert base[0] == base[1]


def test_residual_ground_truth_is_the_input_plus_the_decoders_change(fresh_ckpt, toy_root):
    """The residual mode's flip figures, recomputed by hand for one attribute and direction."""
    from faderkit import metrics
    from faderkit.evaluate import evaluate
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    r = evaluate(fresh_ckpt, split="test", device="cpu", threads=1, gt_images=6)
    model = faderkit.load(fresh_ckpt)
    ds = ToyFaces(toy_root, image_size=S, attributes=["Smiling", "Eyeglasses"])
    split = ds.split("test")
    x = to_unit(split.images(np.arange(len(split))))
    y = split.labels
    with torch.no_grad():
        feats = model.model.encoder(x)
        code = model.model.code(y)
        rec = model.model.decoder(feats, code)
        flipped = code.clone()
        flipped[:, 0:2] = model.model.code(1 - y)[:, 0:2]
        dec = model.model.decoder(feats, flipped)
    res = (x + dec - rec).clamp(-1, 1).add(1).div(2)
    for mode, edit in (("residual", res), ("decoded", dec.clamp(-1, 1).add(1).div(2))):
        got = r["ground_truth"][mode]["per_attribute"]["Smiling"]["flip"]["by_direction"]
        for src in (0, 1):
            rows = [b for b in range(len(y)) if int(y[b, 0]) == src]
            if not rows:
                continue
            renders = torch.stack([ds.render("test", b, {"Smiling": float(1 - src)}) for b in rows]).float() / 255
            want = float(metrics.psnr(edit[rows], renders).mean())
            assert got[f"{src}->{1 - src}"]["psnr"] == pytest.approx(want, abs=1e-4)


def test_no_ground_truth_for_a_dataset_that_cannot_render(fresh_ckpt, tmp_path, monkeypatch):
    from faderkit.evaluate import evaluate
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    monkeypatch.delattr(ToyFaces, "render")
    threads = torch.get_num_threads()
    r = evaluate(fresh_ckpt, split="test", device="cpu", threads=1)
    assert torch.get_num_threads() == threads  # --threads holds for the evaluation only
    assert r["ground_truth"]["available"] is False and "cannot render" in r["ground_truth"]["note"]


def test_an_attribute_the_generator_cannot_draw_is_reported_not_fatal(fresh_ckpt, monkeypatch):
    from faderkit.evaluate import evaluate
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    real = ToyFaces.render

    def render(self, split, index, values):
        if "Eyeglasses" in values:
            raise faderkit.FaderkitError("no glasses today")
        return real(self, split, index, values)

    monkeypatch.setattr(ToyFaces, "render", render)
    gt = evaluate(fresh_ckpt, split="test", device="cpu", threads=1)["ground_truth"]
    for mode in MODES:
        assert gt[mode]["per_attribute"]["Eyeglasses"] == {"error": "no glasses today"}
        assert gt[mode]["per_attribute"]["Smiling"]["flip"]["psnr"] > 0


def test_eval_classifier_is_cached_and_independent_of_the_runs(evaluated, fresh_ckpt, tmp_path):
    cached = fresh_ckpt.parent / EVAL_CLASSIFIER
    before = cached.read_bytes()
    result = invoke("eval", fresh_ckpt, "--out", tmp_path / "again", "--device", "cpu", "--threads", "1", "--quiet",
                    "--gt-images", "0")
    assert result.exit_code == 0, result.output
    r = json.loads((tmp_path / "again" / "report.json").read_text())
    assert r["classifier"]["source"] == "cached" and cached.read_bytes() == before
    assert r["ground_truth"]["available"] is False
    own, _ = ckpt.load(fresh_ckpt.parent / "classifier.safetensors")
    ours, meta = ckpt.load(cached)
    assert meta["seed_offset"] == 1
    assert any(not torch.equal(own[k], ours[k]) for k in own if k.endswith("weight"))


def test_judging_with_the_runs_own_classifier_is_flagged(fresh_ckpt, tmp_path):
    result = invoke("eval", fresh_ckpt, "--out", tmp_path / "own", "--device", "cpu", "--threads", "1", "--quiet",
                    "--gt-images", "0", "--classifier", fresh_ckpt.parent / "classifier.safetensors", "--alpha", "2")
    assert result.exit_code == 0, result.output
    r = json.loads((tmp_path / "own" / "report.json").read_text())
    assert r["classifier"]["independent"] is False and "not independent" in r["classifier"]["note"]
    assert r["alpha"]["values"] == {"0->1": 2.0, "1->0": -1.0}


def test_eval_grids_one_row_per_image_one_block_per_attribute(evaluated):
    out, r = evaluated
    for tail in ("", "_residual", "_clean", "_decoded"):  # the default (local) mode, all the change, its faint part
        # dropped, the decoder's own
        flips = Image.open(out / f"samples{tail}.png")
        assert flips.size == (PAD + 4 * (S + PAD), HEADER + PAD + 6 * (S + PAD))  # orig, recon, 2 flips; 6 test images
        for name in ("Smiling", "Eyeglasses"):
            sweep = Image.open(out / f"sweep_{name}{tail}.png")
            assert sweep.size == (PAD + 7 * (S + PAD), HEADER + PAD + 6 * (S + PAD))  # orig, recon, 0:1:5
    assert set(r["files"]) == {f"{k}{tail}" for k in ("samples", "sweep_Smiling", "sweep_Eyeglasses")
                               for tail in ("", "_residual", "_clean", "_decoded")}


def test_a_categorical_model_is_evaluated_value_to_value(toy_root, tmp_path):
    """Toy flowers' one 7-valued colour: flips go to the next value, judged and compared with the render."""
    from faderkit.evaluate import evaluate
    from faderkit.recipe import validate
    from faderkit.train import train
    from faderkit_plugins.toyflowers import generate
    from faderkit_plugins.toyflowers.render import COLORS

    from conftest import tiny_recipe

    root = tmp_path / "flowers"
    generate.generate(root, 40, seed=0, progress=False)
    recipe = tiny_recipe(root, steps=2, eval_every=2, sample_every=2)
    recipe["data"] = {"name": "toyflowers", "root": str(root), "image_size": S, "params": {"color_mode": "categorical"}}
    recipe["classifier"]["steps"] = 2
    best = train(validate(recipe), tmp_path / "run", progress=False, log=lambda m: None)
    r = evaluate(best, tmp_path / "report", device="cpu", threads=1, gt_images=2)
    for mode in MODES:
        sw = r["swap_accuracy"][mode]["per_attribute"]["color"]
        assert set(sw["n"]) == {f"{a}->{b}" for a, b in zip(COLORS, COLORS[1:] + COLORS[:1])}
        assert sum(sw["n"].values()) == r["split"]["images"]
        gt = r["ground_truth"][mode]["per_attribute"]["color"]
        assert gt["slider"] is None and sum(d["n"] for d in gt["flip"]["by_direction"].values()) == 2
        assert r["preservation"][mode]["mean"] is None  # nothing else to preserve
    assert set(r["files"]) == {"samples", "samples_residual", "samples_clean", "samples_decoded"}  # no sweep: no binary attribute
    assert "## Ground truth" in (tmp_path / "report" / "report.md").read_text()


# ---------------------------------------------------------------- edit --sweep

@pytest.fixture
def face(toy_root):
    return toy_root / "img_align_celeba" / "000055.jpg"


def test_edit_sweep_writes_one_row_original_reconstruction_and_the_values(trained_run, face, tmp_path):
    out = tmp_path / "grid.png"
    result = invoke("edit", face, "-c", trained_run / "best.safetensors", "--sweep", "Smiling=-0.5:1.5:9", "-o", out)
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(out))
    assert grid.shape == (HEADER + PAD + S + PAD, PAD + 11 * (S + PAD), 3)
    model = faderkit.load(trained_run / "best.safetensors")
    x = model.prepare(face)

    def tile(j):
        y, x0 = HEADER + PAD, PAD + j * (S + PAD)
        return grid[y:y + S, x0:x0 + S]

    assert np.array_equal(tile(0), x[0].permute(1, 2, 0).numpy())
    assert np.array_equal(tile(1), model.edit_tensor(x, {}, "decoded")[0].permute(1, 2, 0).numpy())  # D(z, y)
    assert np.array_equal(tile(2 + 8), model.edit_tensor(x, {"Smiling": 1.5})[0].permute(1, 2, 0).numpy())
    decoded = tmp_path / "decoded.png"
    result = invoke("edit", face, "-c", trained_run / "best.safetensors", "--sweep", "Smiling=-0.5:1.5:9",
                    "--mode", "decoded", "-o", decoded)
    assert result.exit_code == 0, result.output
    grid = np.asarray(Image.open(decoded))
    assert np.array_equal(tile(2 + 8), model.edit_tensor(x, {"Smiling": 1.5}, "decoded")[0].permute(1, 2, 0).numpy())
    assert grid[:HEADER].min() < 100  # titled columns: dark text on the white strip
    plain = tmp_path / "plain.png"
    result = invoke("edit", face, "-c", trained_run / "best.safetensors", "--sweep", "Eyeglasses=0:1:3",
                    "--no-labels", "-o", plain)
    assert result.exit_code == 0 and Image.open(plain).size == (PAD + 5 * (S + PAD), PAD + S + PAD)


def test_edit_sweep_and_compare_are_the_library_s_sweep_row_and_compare(trained_run, face, tmp_path):
    from faderkit.sliders import sweep_row

    model = faderkit.load(trained_run / "best.safetensors")
    for args, made in ((["--sweep", "Smiling=0:1:3", "--set", "Eyeglasses=1"],
                        sweep_row(model, face, "Smiling", [0.0, 0.5, 1.0], {"Eyeglasses": 1})),
                       (["--compare", "--set", "Smiling=1"], model.compare(face, Smiling=1)),
                       (["--compare", "--mode", "decoded", "--set", "Smiling=1"], model.compare(face, mode="decoded", Smiling=1))):
        out = tmp_path / "out.png"
        result = invoke("edit", face, "-c", trained_run / "best.safetensors", *args, "-o", out)
        assert result.exit_code == 0, result.output
        assert np.array_equal(np.asarray(Image.open(out)), np.asarray(made)), args
    side = np.asarray(model.compare(face, Smiling=1))
    assert np.array_equal(side[:, 180:], np.asarray(model.edit(face, Smiling=1)))  # 178 px input, 2 px gap, edit


def test_sweep_ranges_are_inclusive_and_evenly_spaced():
    assert parse_values("-0.5:1.5:9") == [-0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]


@pytest.mark.parametrize("sweep,message", [
    ("Smiling=1:1:5", "is empty: START equals STOP"),
    ("Smiling=1.5:-0.5:9", "is reversed"),
    ("Smiling=0:1:1", "COUNT must be at least 2"),
    ("Smiling=0:1:0", "COUNT must be at least 2"),
    ("Smiling", "malformed --sweep 'Smiling'"),
    ("Smiling=0:1", "expected START:STOP:COUNT"),
    ("Smiling=a:b:c", "must be numbers"),
    ("Smiling=0:inf:3", "must be finite"),
    ("Smilng=0:1:5", "cannot sweep 'Smilng': unknown attribute; this model has: Smiling, Eyeglasses"),
    ("Smiling=0:1:5 --compare", "--sweep and --compare: choose one"),
])
def test_edit_bad_sweeps(trained_run, face, tmp_path, sweep, message):
    sweep, *more = sweep.split(" ")
    result = invoke("edit", face, "-c", trained_run / "best.safetensors", "--sweep", sweep, *more, "-o", tmp_path / "g.png")
    assert_one_line_error(result, message)
    assert not (tmp_path / "g.png").exists()


# ---------------------------------------------------------------- eval: bad input

@pytest.fixture(scope="module")
def stranger_classifier(trained_run, tmp_path_factory):
    """The run's classifier relabelled as one that knows only Male and Bangs."""
    tensors, meta = ckpt.load(trained_run / "classifier.safetensors")
    meta["attributes"] = [{"name": "Male", "values": ["0", "1"]}, {"name": "Bangs", "values": ["0", "1"]}]
    path = tmp_path_factory.mktemp("stranger") / "male_bangs.safetensors"
    ckpt.save(path, tensors, meta)
    return path


@pytest.mark.parametrize("args,message", [
    (["--split", "validation"], "has no split 'validation'; choose one of: train, valid, test"),
    (["--classifier", "STRANGER"], "does not know attribute(s) Smiling, Eyeglasses of the checkpoint; "
                                   "it was trained on: Male, Bangs"),
    (["--classifier", "CKPT"], "is a faderkit fader checkpoint, not an attribute classifier"),
    (["--sweep", "1:0:5"], "is reversed"),
    (["--sweep", "0:1"], "expected START:STOP:COUNT"),
    (["--attribute", "Male"], "cannot sweep 'Male': unknown attribute"),
    (["--alpha", "0.5"], "must be above 0.5"),
])
def test_eval_bad_input(fresh_ckpt, stranger_classifier, tmp_path, args, message):
    args = [{"STRANGER": stranger_classifier, "CKPT": fresh_ckpt}.get(a, a) for a in args]
    result = invoke("eval", fresh_ckpt, "--out", tmp_path / "r", "--device", "cpu", "--threads", "1", "--quiet", *args)
    assert_one_line_error(result, message)
    assert not (tmp_path / "r" / "report.json").exists()


def test_eval_of_a_missing_or_wrong_checkpoint(trained_run, tmp_path):
    assert_one_line_error(invoke("eval", tmp_path / "none.safetensors", "--device", "cpu"), "checkpoint not found")
    assert_one_line_error(invoke("eval", trained_run / "classifier.safetensors", "--device", "cpu"),
                          "not a trained fader model")


# ---------------------------------------------------------------- curves

@pytest.fixture
def run_copy(trained_run, tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    shutil.copy(trained_run / "metrics.jsonl", d / "metrics.jsonl")
    return d


def test_curves_png_from_the_metrics_log(run_copy):
    path = plot_curves(run_copy)
    assert path == run_copy / "curves.png"
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (960, 520)
    assert len(np.unique(np.asarray(img.convert("L")))) > 10  # something drawn, not a blank canvas


def test_curves_survive_a_log_cut_short_and_the_cli_draws_them(run_copy, tmp_path):
    with open(run_copy / "metrics.jsonl", "a") as f:
        f.write('{"step": 14, "loss_rec": 0.1, "loss_d')  # a record being written
    out = tmp_path / "c.png"
    result = invoke("curves", run_copy, "-o", out)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out) and Image.open(out).size == (960, 520)
    (run_copy / "metrics.jsonl").write_text("")
    assert plot_curves(run_copy).exists()  # an empty log (training just started) still gives a picture


def test_curves_of_a_folder_that_is_not_a_run(tmp_path):
    assert_one_line_error(invoke("curves", tmp_path), "has no metrics.jsonl")
    assert_one_line_error(invoke("curves", tmp_path / "nowhere"), "run directory not found")


def _benchmark(name: str):
    """benchmarks/NAME.py loaded as a module (its main() takes argv)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- benchmarks/slider_bound.py

def test_slider_bound_progress_is_the_projection_on_the_true_change():
    sb = _benchmark("slider_bound")
    d = torch.rand(3, 3, 8, 8)
    d[2] = 0  # an image the attribute does not change is left out
    assert sb.progress(d, d) == pytest.approx(1)
    assert sb.progress(0.25 * d, d) == pytest.approx(0.25) and sb.progress(-d, d) == pytest.approx(-1)


def test_slider_bound_edit_figure_is_evals_decoded_progress(evaluated, fresh_ckpt, toy_root, capsys):
    """The benchmark's 'edit' column is eval's slider progress at 1 (decoded mode), recomputed on the same images."""
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    sb = _benchmark("slider_bound")
    _, r = evaluated
    n = r["ground_truth"]["images"]
    editor = faderkit.load(fresh_ckpt)
    rows = sb.bounds(editor, ToyFaces(toy_root, image_size=S, attributes=["Smiling", "Eyeglasses"]), "test", n)
    assert list(rows) == ["Smiling", "Eyeglasses"]
    for name, row in rows.items():
        want = r["ground_truth"]["decoded"]["per_attribute"][name]["slider"]["progress_edit"][-1]
        assert row["edit"] == pytest.approx(want, abs=1e-5)
        slider = r["ground_truth"]["decoded"]["per_attribute"][name]["slider"]
        assert (row["edit cosine"], row["edit ratio"]) == pytest.approx((slider["cosine"], slider["ratio"]), abs=1e-5)
        assert 1 > row["blur 0.5"] > row["blur 1"] > 0 and all(-5 < row[k] < 5 for k in ("decoder", "through z"))
    sb.main([str(fresh_ckpt), "--images", str(n)])  # no --threads: it would stay set for the tests after this one
    out = capsys.readouterr().out
    assert ("| attribute | edit | edit cosine | edit ratio | decoder | decoder cosine | decoder ratio | through z "
            "| blur 0.5 | blur 1 |") in out
    assert f"| Smiling | {rows['Smiling']['edit']:.2f} |" in out


def test_the_report_says_when_local_is_residual_for_want_of_maps(evaluated):
    import copy

    from faderkit.evaluate.report import markdown

    _, r = evaluated
    assert "stores no change maps" not in markdown(r)
    old = copy.deepcopy(r)
    old["output_modes"]["change_maps"] = False  # as eval reports a checkpoint trained before the maps were stored
    assert "(edit's default: **local**); this checkpoint stores no change maps, so local is residual." in markdown(old)


# ---------------------------------------------------------------- benchmarks/local_mask.py

def test_local_mask_rows_are_evals_local_figures_and_a_higher_threshold_keeps_less_outside(evaluated, fresh_ckpt,
                                                                                           capsys):
    from faderkit.changemaps import MASK_GROW, MASK_THRESHOLD, MaskSetting

    lm = _benchmark("local_mask")
    _, r = evaluated
    n = r["ground_truth"]["images"]
    assert lm.main([str(fresh_ckpt), "--split", "test", "--images", str(n),
                    "--masks", f"{MASK_THRESHOLD}:{MASK_GROW}", "1:0:0", "1:0:0.5:0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:] for line in lines if line.startswith("| ") and "---" not in line}
    gt = r["ground_truth"]
    for mode, label in (("residual", "none (residual)"), ("local", lm.label(MaskSetting()))):
        pa = [gt[mode]["per_attribute"][a]["slider"] for a in ("Smiling", "Eyeglasses")]
        assert rows[label][0] == " / ".join(f"{s['progress_edit'][-1]:.2f}" for s in pa)  # eval's own figures
        assert rows[label][2] == " / ".join(f"{s['outside']:.0%}" for s in pa)
    outside = lambda label: [float(v.strip(" %")) for v in rows[label][2].split(" / ")]  # noqa: E731
    maps_only, own_too = lm.label(MaskSetting(1, 0, 0)), lm.label(MaskSetting(1, 0, 0.5, 0))
    assert all(a <= b for a, b in zip(outside(maps_only), outside("none (residual)")))
    assert all(a <= b for a, b in zip(outside(own_too), outside(maps_only)))  # the image's own mask keeps less
    for bad in ("0.2", "0.2:2:1.5", "0.2:2:0.1:1:3"):
        with pytest.raises(SystemExit):
            lm.main([str(fresh_ckpt), "--masks", bad])


# ---------------------------------------------------------------- benchmarks/slider_gain.py

def test_slider_gain_at_one_is_evals_edit_and_a_larger_gain_moves_further(evaluated, fresh_ckpt, capsys):
    sg = _benchmark("slider_gain")
    _, r = evaluated
    n = r["ground_truth"]["images"]
    assert sg.main([str(fresh_ckpt), "--split", "test", "--images", str(n), "--gains", "1", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {tuple(line.split(" | ")[:2]): line.split(" | ")[2:] for line in lines if line.startswith("| ") and "---" not in line}
    gt = r["ground_truth"]
    for mode in ("local", "residual"):
        pa = [gt[mode]["per_attribute"][a]["slider"] for a in ("Smiling", "Eyeglasses")]
        assert rows[("| 1", mode)][0] == " / ".join(f"{s['progress_edit'][-1]:.2f}" for s in pa)  # eval's own edit
        assert rows[("| 1", mode)][2] == " / ".join(f"{s['ratio']:.2f}" for s in pa)
    ratio = lambda g: [float(v) for v in rows[(f"| {g}", "residual")][2].split(" / ")]  # noqa: E731
    assert all(b > 1.5 * a for a, b in zip(ratio(1), ratio(2)))  # the code moved twice as far: about twice the change
    for bad in ("0", "-1", "x", "11"):
        with pytest.raises(SystemExit):
            sg.main([str(fresh_ckpt), "--gains", bad])


# ---------------------------------------------------------------- benchmarks/latent_readers.py

def test_latent_readers_rank_probe_is_evals_and_every_reader_reads_a_gap(evaluated, fresh_ckpt, toy_root, capsys):
    """The diagnosis of docs/quality.md's tenth round: its rank probe is eval's (same latents, same seed: the same
    gaps), and each other reader gives one gap per attribute, printed in points."""
    from faderkit.recipe import validate
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    lr = _benchmark("latent_readers")
    _, r = evaluated
    editor = faderkit.load(fresh_ckpt)
    recipe = validate(editor.meta["recipe"], "the tiny run's", stored=True)
    rows = lr.readings(editor, recipe, ToyFaces(toy_root, image_size=S, attributes=["Smiling", "Eyeglasses"]))
    names = list(rows)
    assert names[:3] == ["rank probe (eval's)", "linear on ranks", "own D (as trained)"] and len(names) == 5
    assert names[3].startswith("fresh D (lr ") and names[4].startswith("fresh D, slow (lr ")
    want = r["latent_probe"]["maps"]["z"]["by_reader"]["ranks"]
    assert rows["rank probe (eval's)"] == pytest.approx([want["Smiling"], want["Eyeglasses"]], abs=1e-6)
    assert all(len(v) == 2 and all(-1 <= g <= 1 for g in v) for v in rows.values())
    lr.main([str(fresh_ckpt), "--train-images", "100"])
    out = capsys.readouterr().out
    assert "Smiling / Eyeglasses" in out and "fresh D, slow" in out
