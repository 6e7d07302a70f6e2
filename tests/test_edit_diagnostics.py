"""Issue 22's diagnostics: what the latent adversary and the probe read when the decoder has skips, and the
ground-truth split of a slider's progress into direction, size and locality."""

import pytest
import torch

from faderkit.evaluate.groundtruth import DILATE, direction_and_size, outside_change, progress_along
from faderkit.interfaces import Attribute
from faderkit.model import FaderModel
from faderkit.recipe import validate

from conftest import tiny_recipe


def _model(toy_root, n_skip: int) -> FaderModel:
    r = tiny_recipe(toy_root)
    r["model"]["decoder"] = {"name": "paper", "params": {"n_skip": n_skip}}
    r["model"]["discriminator"] = {"name": "mlp", "params": {"hid_dim": 16}}
    return FaderModel.build(validate(r), (Attribute("Smiling"), Attribute("Eyeglasses")))


@pytest.mark.parametrize("n_skip", [0, 1, 2])
def test_the_adversary_reads_the_shallowest_map_the_decoder_receives(toy_root, n_skip):
    model = _model(toy_root, n_skip)
    feats = model.encoder(torch.zeros(2, 3, 32, 32))
    assert model.decoder.receives == tuple(range(-1, -2 - n_skip, -1))
    assert list(model.received(feats)) == list(model.decoder.receives)
    read = model.adversary_input(feats)
    assert read is feats[-1 - n_skip]
    model.discriminator.eval()
    assert model.discriminator(read).shape == (2, 4)  # built for that map's shape, not the latent's
    if n_skip:
        with pytest.raises(RuntimeError):
            model.discriminator(feats[-1])


def test_the_encoder_reports_the_shape_of_every_map(toy_root):
    enc = _model(toy_root, 0).encoder
    assert enc.feature_shapes(32) == [(8, 16, 16), (16, 8, 8), (32, 4, 4)]
    assert enc.feature_shapes(32)[-1] == enc.latent_shape
    assert enc.training  # the blank pass leaves the mode as it found it


def test_progress_splits_into_cosine_times_ratio():
    g = torch.Generator().manual_seed(0)
    d = torch.randn(4, 3, 8, 8, generator=g)
    move = 0.5 * d + 0.3 * torch.randn(4, 3, 8, 8, generator=g)
    cos, ratio = direction_and_size(move, d)
    assert torch.allclose(cos * ratio, progress_along(move[:, None], d)[:, 0], atol=1e-5)
    cos, ratio = direction_and_size(0.5 * d, d)
    assert torch.allclose(cos, torch.ones(4)) and torch.allclose(ratio, torch.full((4,), 0.5))
    cos, _ = direction_and_size(-d, d)
    assert torch.allclose(cos, -torch.ones(4))


def test_outside_counts_only_the_change_beyond_the_dilated_true_change():
    d = torch.zeros(1, 3, 16, 16)
    d[0, 1, 8, 8] = 0.5  # the true edit changes one pixel, in one channel
    move = torch.zeros_like(d)
    move[0, :, 8, 8 + DILATE] = 0.1  # within the dilation: inside
    assert outside_change(move, d) == pytest.approx((0.0, 0.3))
    move[0, 0, 8, 9 + DILATE] = 0.2  # one pixel further: outside
    out, total = outside_change(move, d)
    assert (out, total) == pytest.approx((0.2, 0.5))


def test_the_rank_reader_sees_through_a_few_far_out_latents():
    """An attribute carried by one dimension of every latent, while 4% of the latents are sent 500 times further
    out: standardised, the others are squashed together and the probe reads little; by ranks it reads it all."""
    from faderkit.evaluate.probe import train_probe

    g = torch.Generator().manual_seed(0)
    attrs = (Attribute("Smiling"),)
    y = torch.randint(0, 2, (1200, 1), generator=g)
    z = torch.randn(1200, 16, generator=g)
    z[:, 0] += 4 * y[:, 0]
    z[:48] *= 500
    test = slice(1000, None)
    acc = {}
    for reader in ("standardised", "ranks"):
        probe, info = train_probe(z[:1000], y[:1000], attrs, epochs=10, reader=reader)
        with torch.no_grad():
            acc[reader] = float((probe(z[test]).argmax(1) == y[test, 0]).float().mean())
    assert acc["ranks"] > 0.85 and acc["standardised"] < acc["ranks"] - 0.15
    with pytest.raises(ValueError):
        train_probe(z, y, attrs, reader="raw")


def test_eval_reports_the_split_and_a_probe_per_received_map(toy_root, tmp_path):
    from faderkit.evaluate import evaluate
    from faderkit.train import train

    r = tiny_recipe(toy_root)
    r["model"]["decoder"] = {"name": "paper", "params": {"n_skip": 1}}
    run = tmp_path / "skip"
    train(validate(r), run, progress=False, log=lambda m: None)
    report = evaluate(run / "best.safetensors", gt_images=6, probe_train_images=40, probe_epochs=2)
    lp = report["latent_probe"]
    assert list(lp["maps"]) == ["z", "skip -2"]
    assert lp["maps"]["z"]["latent_dim"] == 32 * 4 * 4 and lp["maps"]["skip -2"]["latent_dim"] == 16 * 8 * 8
    for name, row in lp["per_attribute"].items():  # an attribute's row is the map and reader that read it best
        assert row["gap"] == max(g[name] for m in lp["maps"].values() for g in m["by_reader"].values())
        assert row["reader"] in lp["readers"] == ["standardised", "ranks"]
    for mode in ("residual", "decoded"):
        s = report["ground_truth"][mode]["per_attribute"]["Smiling"]["slider"]
        assert -1 <= s["cosine"] <= 1 and s["ratio"] >= 0 and 0 <= s["outside"] <= 1


def test_a_change_head_draws_what_the_code_changes_only_through_its_mask(toy_root):
    from faderkit_plugins.paper.networks import PaperDecoder, PaperEncoder
    from faderkit.interfaces import ArchSpec

    arch = ArchSpec(32, (Attribute("Smiling"), Attribute("Eyeglasses")), 3, 8, 32)
    enc = PaperEncoder(arch)
    dec = PaperDecoder(arch.with_latent(enc.latent_shape), head="change").eval()
    feats = enc(torch.rand(2, 3, 32, 32) * 2 - 1)
    y0, y1 = torch.tensor([[1.0, 0, 1, 0]] * 2), torch.tensor([[0.0, 1, 1, 0]] * 2)
    out = dec(feats, y0)
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1 and dec.last_mask.shape == (2, 1, 32, 32)
    assert dec.layers[0][0].in_channels == 32 and dec.change[0][0].in_channels == 32 + 4  # the base never sees y
    assert not torch.equal(dec(feats, y1), out)
    with torch.no_grad():  # a mask shut everywhere: the code changes no pixel
        last = dec.change[-1][0]
        last.weight[:, :1].zero_()
        last.bias[:1].fill_(-100.0)
    assert torch.equal(dec(feats, y1), dec(feats, y0))


def test_the_change_mask_loss_needs_a_change_head(toy_root, tmp_path):
    from faderkit.errors import FaderkitError
    from faderkit.train import train

    r = tiny_recipe(toy_root, steps=2)
    del r["train"]["objective"]["lambda_e"]
    r["train"]["objective"]["losses"] = [{"name": "mse"}, {"name": "change_mask", "weight": 0.01}]
    with pytest.raises(FaderkitError, match="needs a decoder with a change head"):
        train(validate(r), tmp_path / "plain", progress=False, log=lambda m: None)
    r["model"]["decoder"] = {"name": "paper", "params": {"head": "change"}}
    train(validate(r), tmp_path / "change", progress=False, log=lambda m: None)
    import json
    logged = [json.loads(l) for l in (tmp_path / "change" / "metrics.jsonl").read_text().splitlines() if "mask_area" in l]
    assert logged and all(0 < m["mask_area"] < 1 for m in logged)
