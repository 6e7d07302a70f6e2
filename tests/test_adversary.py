"""The latent adversary: its objectives, its replayed updates, and an exact resume with a replay buffer."""

import math
from contextlib import nullcontext

import pytest
import torch
from torch import nn

from conftest import tiny_recipe
from faderkit import checkpoint
from faderkit.codes import attribute_loss, flipped_labels
from faderkit.interfaces import Attribute
from faderkit.recipe import validate
from faderkit.train_sections import AdversarySection
from faderkit.train import train
from faderkit.train.adversary import LatentAdversary, replay_loaded, replay_tensors

ATTRS = (Attribute("A"), Attribute("C", ("r", "g", "b")))


def adversary(net, **train_options):
    t = AdversarySection(**train_options)
    return LatentAdversary(net, net, ATTRS, t, 5.0, torch.optim.Adam(net.parameters(), lr=1e-2), nullcontext())


def test_the_confusion_objective_is_smallest_when_the_discriminator_cannot_tell():
    net = nn.Linear(4, 5)
    adv = adversary(net, adv_objective="confusion")
    z, labels, gen = torch.randn(6, 4), torch.tensor([[0, 1]] * 6), torch.Generator().manual_seed(0)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
    assert adv.encoder_loss(z, labels, gen).item() == pytest.approx(math.log(2) + math.log(3), abs=1e-6)
    with torch.no_grad():
        net.bias.copy_(torch.tensor([3.0, -3.0, 1.0, 0.0, -1.0]))  # any preference costs more
    assert adv.encoder_loss(z, labels, gen).item() > math.log(2) + math.log(3) + 0.1


def test_the_paper_objective_is_the_cross_entropy_against_the_flipped_attributes():
    torch.manual_seed(0)
    net = nn.Linear(4, 5)
    adv = adversary(net, adv_objective="paper")
    z, labels = torch.randn(6, 4), torch.tensor([[0, 1], [1, 2], [0, 0], [1, 1], [0, 2], [1, 0]])
    got = adv.encoder_loss(z, labels, torch.Generator().manual_seed(3))
    want = attribute_loss(net(z), flipped_labels(labels, ATTRS, torch.Generator().manual_seed(3)), ATTRS)
    assert got.item() == pytest.approx(want.item(), abs=1e-6)


def test_the_encoder_term_reaches_the_latent_only():
    net = nn.Linear(4, 5)
    adv = adversary(net, adv_objective="confusion")
    z = torch.randn(3, 4, requires_grad=True)
    adv.encoder_loss(z, torch.zeros(3, 2, dtype=torch.long), torch.Generator()).backward()
    assert z.grad.abs().sum() > 0 and net.weight.grad is None and net.weight.requires_grad


def test_extra_updates_replay_recent_latents_and_never_encode():
    net = nn.Linear(4, 5)
    adv = adversary(net, dis_steps=4, dis_replay=3)

    def fresh(k):
        raise AssertionError("a replayed update must not encode a new batch")

    batches = [(torch.full((2, 4), float(i)), torch.zeros(2, 2, dtype=torch.long)) for i in range(5)]
    for b in batches:
        adv.update(b, fresh, torch.Generator().manual_seed(0))
    assert [float(z[0, 0]) for z, _ in adv.replay] == [2.0, 3.0, 4.0]  # the last three iterations
    assert int(adv.opt.state_dict()["state"][0]["step"]) == 5 * 4  # four updates per iteration


def test_without_a_replay_buffer_extra_updates_encode_new_batches():
    net = nn.Linear(4, 5)
    adv = adversary(net, dis_steps=3, dis_replay=0)
    asked = []

    def fresh(k):
        asked.append(k)
        return torch.randn(2, 4), torch.zeros(2, 2, dtype=torch.long)

    adv.update((torch.randn(2, 4), torch.zeros(2, 2, dtype=torch.long)), fresh, torch.Generator())
    assert asked == [1, 2] and adv.replay == []


def test_a_run_with_a_replay_buffer_resumes_bit_for_bit(toy_root, tmp_path):
    options = {"dis_steps": 3, "dis_replay": 2, "dis_lr": 0.002, "adv_objective": "confusion"}
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(validate(tiny_recipe(toy_root, **options)), straight, progress=False, log=lambda m: None)
    train(validate(tiny_recipe(toy_root, steps=5, **options)), resumed, progress=False, log=lambda m: None)
    train(validate(tiny_recipe(toy_root, **options)), resumed, resume=True, progress=False, log=lambda m: None)
    a, _ = checkpoint.load(straight / "last.safetensors")
    b, _ = checkpoint.load(resumed / "last.safetensors")
    assert any(k.startswith("adversary.replay.") for k in a)  # the buffer is part of the training state
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_replay_keeps_latents_in_the_layout_a_resume_reads_back():
    """A channels_last latent (what cpuconv's nhwc path leaves) is replayed live in the layout a checkpoint restores:
    cpuconv measures a channels_last input apart, so a different layout could take another convolution path and
    a resumed run drift from the one never stopped (the sigkill test's intermittent failure, stop 40)."""
    net = nn.Sequential(nn.Conv2d(8, 5, 2), nn.Flatten())
    adv = adversary(net, dis_steps=2, dis_replay=2)
    z = torch.randn(3, 8, 2, 2).contiguous(memory_format=torch.channels_last)
    assert not z.is_contiguous()
    adv.update((z, torch.zeros(3, 2, dtype=torch.long)), None, torch.Generator().manual_seed(0))
    live = adv.replay[0][0]
    restored = replay_loaded({k: v.contiguous() for k, v in replay_tensors(adv.replay).items()}, "cpu")[0][0]
    assert live.is_contiguous() and live.stride() == restored.stride() and torch.equal(live, z)
