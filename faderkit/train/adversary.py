"""The latent adversary: the discriminator P that reads the attributes from z = E(x), and the term
that makes the encoder defeat it.

P is updated ``dis_steps`` times per autoencoder update: first on the batch of the iteration, then
on latents of recent batches kept in a replay buffer (no extra encoder pass: P reads only z). The
encoder's term is the paper's, P's cross-entropy against the *flipped* attributes (``paper``), or a
confusion target, P's output pushed to the uniform distribution (``confusion``).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..codes import attribute_loss, blocks, flipped_labels
from ..interfaces import Attribute
from ..train_sections import AdversarySection
from .optim import frozen, update


def warmed_up(weight: float, step: int, warmup: int) -> float:
    """lambda_E at ``step``: ``weight`` reached linearly from 0 over ``warmup`` steps, then held."""
    return weight * (min(1.0, step / warmup) if warmup else 1.0)


class LatentAdversary:
    def __init__(self, discriminator: torch.nn.Module, wrapped: torch.nn.Module, attrs: Sequence[Attribute],
                 settings: AdversarySection, clip_grad: float | None, optimizer: torch.optim.Optimizer, autocast):
        self.net, self.wrapped, self.attrs, self.t = discriminator, wrapped, tuple(attrs), settings
        self.clip, self.opt, self.autocast = clip_grad, optimizer, autocast
        self.replay: list[tuple[torch.Tensor, torch.Tensor]] = []

    # -- the discriminator's updates
    def update(self, first: tuple[torch.Tensor, torch.Tensor], fresh, gen: torch.Generator) -> torch.Tensor:
        """``dis_steps`` updates of P: on ``first`` = (detached z, y) of this iteration, then on latents
        replayed from the buffer or, without one, on ``fresh(k)`` = (z, y) of a new batch. Returns the last loss."""
        t = self.t
        if t.dis_replay:
            # kept in the layout a checkpoint restores (contiguous NCHW): a channels_last latent replayed live and
            # the same latent read back on resume would otherwise take different convolution paths (cpuconv keys
            # a channels_last input apart), and a resumed run would drift from the one never stopped
            self.replay.append((first[0].contiguous(), first[1]))
            del self.replay[:-t.dis_replay]
        loss = None
        for k in range(t.dis_steps):
            if k == 0:
                zk, yk = first
            elif t.dis_replay:
                zk, yk = self.replay[int(torch.randint(len(self.replay), (1,), generator=gen))]
            else:
                zk, yk = fresh(k)
            with self.autocast:
                loss = attribute_loss(self.wrapped(zk).float(), yk, self.attrs)
            update(self.opt, loss, self.net.parameters(), self.clip)
        return loss

    # -- the encoder's term
    def encoder_loss(self, z: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The adversarial term of the autoencoder's loss; gradients reach z only."""
        with frozen(self.net), self.autocast:
            logits = self.net(z).float()
        if self.t.adv_objective == "confusion":
            return sum(-F.log_softmax(logits[:, s], 1).mean(1).mean() for s in blocks(self.attrs))
        target = flipped_labels(labels, self.attrs, gen).to(z.device)
        return attribute_loss(logits, target, self.attrs)

    # -- checkpoints: the replay buffer is state, so that a resumed run continues exactly
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return replay_tensors(self.replay)

    def load_state(self, tensors: dict[str, torch.Tensor], device) -> None:
        self.replay = replay_loaded(tensors, device)


def replay_tensors(replay: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """A replay buffer of (latents, labels) as checkpoint tensors ``replay.<i>.z`` / ``replay.<i>.y``."""
    out = {}
    for i, (z, y) in enumerate(replay):
        out[f"replay.{i}.z"], out[f"replay.{i}.y"] = z, y
    return out


def replay_loaded(tensors: dict[str, torch.Tensor], device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """:func:`replay_tensors` read back, in order."""
    n = len({k.split(".")[1] for k in tensors if k.startswith("replay.")})
    return [(tensors[f"replay.{i}.z"].to(device), tensors[f"replay.{i}.y"].to(device)) for i in range(n)]
