"""A latent invariance term that needs no discriminator: the distance between the latents of an attribute's values.

The latent adversary hides an attribute only as far as its discriminator can read it, and the encoder learns
to write where the discriminator does not look (docs/quality.md, ninth and tenth rounds). This term reads the
latents directly: for each attribute, the sliced Wasserstein-1 distance between the latents of faces with one
value and of faces with the others. The encoder is pushed to make those two distributions the same, which is what
the probe checks, and its gradient is defined wherever the values differ: no reader to fool, no
race to lose.

The latents are standardised per dimension by the median and interquartile range of the batch and the replayed
latents (the gradient flows through those, so shrinking the latent buys nothing), then read along every
dimension (``axes``) and along ``projections`` random directions drawn each step. For each reading the distance
is the area between the two groups' empirical CDFs. The batch alone is too small for a rare value
(two faces with glasses among 16), so the latents of the last ``replay`` steps, detached, join the groups.
"""

from __future__ import annotations

import torch

from faderkit.quantiles import row_quantiles, sorted_columns
from faderkit.train.adversary import replay_loaded, replay_tensors, warmed_up
from faderkit.train.objective import LossTerm, Step, TermEnv


def wasserstein_columns(v: torch.Tensor, order: torch.Tensor, inside: torch.Tensor, n_in: int) -> torch.Tensor:
    """For each row of ``v`` (k, n), sorted, with ``order`` its sort's indices into the n samples: the
    Wasserstein-1 distance between the ``n_in`` samples with ``inside`` (n,) true and the others. The area between
    their two CDFs, read along the sorted values: one sort serves every group, and the gradient reaches the values
    through the gaps between them."""
    member = inside[order].float()                    # (k, n): which sorted value is in the group
    cdf_in = member.cumsum(1)[:, :-1] / n_in
    cdf_out = (1 - member).cumsum(1)[:, :-1] / (inside.numel() - n_in)
    return ((cdf_in - cdf_out).abs() * (v[:, 1:] - v[:, :-1])).sum(1)


def normal_gap(v: torch.Tensor) -> torch.Tensor:
    """For each row of ``v`` (k, n), sorted, the Wasserstein-1 distance of its values from a standard normal
    (against the normal's quantiles at (j + 0.5) / n)."""
    n = v.shape[1]
    levels = (torch.arange(n, device=v.device, dtype=v.dtype) + 0.5) / n
    return (v - torch.special.ndtri(levels)).abs().mean(1)


def robust_standardised(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each column of ``z`` (n, d) centred on its median and divided by its interquartile range (as a normal's
    deviation): the standardised latents (n, d), and their columns sorted (d, n) with the sort's indices. One sort
    gives both: the quartiles are read from it (as torch.quantile does), and the standardisation keeps each
    column's order."""
    v, order = sorted_columns(z)
    q = row_quantiles(v, [0.25, 0.5, 0.75])                      # (d, 3)
    median, scale = q[:, 1], ((q[:, 2] - q[:, 0]) / 1.349).clamp_min(1e-6)
    return (z - median) / scale, (v - median[:, None]) / scale[:, None], order


class LatentDistance(LossTerm):
    """For each attribute and value, the sliced Wasserstein-1 distance between the standardised latents (every
    map the decoder receives) of the faces with that value and of the others, averaged over the readings, values
    and attributes; weighted up linearly over ``warmup`` steps."""

    def __init__(self, env: TermEnv, projections: int = 64, axes: bool = True, replay: int = 8, warmup: int = 500,
                 shape: float = 0.0):
        self.model, self.attrs, self.shape = env.model, env.attributes, shape
        self.projections, self.axes, self.keep, self.warmup = projections, axes, replay, warmup
        self.replay: list[tuple[torch.Tensor, torch.Tensor]] = []

    def weight_at(self, step: int, weight: float) -> float:
        return warmed_up(weight, step, self.warmup)

    def latents(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat([m.flatten(1).float() for m in self.model.received(feats).values()], 1)

    def distance(self, z: torch.Tensor, y: torch.Tensor, gen: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """For latents ``z`` (n, d) with labels ``y`` (n, attributes): the distance between the values' latents,
        and each dimension's distance from a normal's shape (0 when ``shape`` is 0)."""
        s, s_sorted, s_order = robust_standardised(z)
        shape = normal_gap(s_sorted).mean() if self.shape else s.new_zeros(())
        sorted_reads = [(s_sorted, s_order)] if self.axes else []
        if self.projections:
            dirs = torch.randn(s.shape[1], self.projections, generator=gen).to(s.device)
            sorted_reads.append(sorted_columns(s @ (dirs / dirs.norm(dim=0, keepdim=True))))
        if not sorted_reads:  # axes off and no projections: the shape prior alone
            return s.new_zeros(()), shape
        v, order = (torch.cat(t) for t in zip(*sorted_reads))
        total, n = v.new_zeros(()), 0
        for i, a in enumerate(self.attrs):
            for value in (range(1, 2) if a.size == 2 else range(a.size)):  # binary: one comparison, 1 against 0
                inside = y[:, i] == value
                n_in = int(inside.sum())                # one read of the count per group (a sync on a GPU)
                if n_in < 2 or inside.numel() - n_in < 2:
                    continue
                total = total + wasserstein_columns(v, order, inside, n_in).mean()
                n += 1
        return total / max(n, 1), shape

    def loss(self, step: Step):
        z = self.latents(step.feats)
        pool_z = torch.cat([z] + [r for r, _ in self.replay])
        pool_y = torch.cat([step.y] + [y for _, y in self.replay])
        distance, shape = self.distance(pool_z, pool_y, step.gen)
        value = distance + self.shape * shape
        if self.keep:
            self.replay.append((z.detach(), step.y.clone()))  # the adversary keeps step.y: one tensor, one owner
            del self.replay[:-self.keep]
        return value, self._stats(distance, shape)

    def idle_stats(self) -> dict:
        return self._stats(0.0, 0.0)

    def _stats(self, distance, shape) -> dict:
        out = {"loss_distance": distance} if self.axes or self.projections else {}
        return out | ({"latent_shape": shape} if self.shape else {})

    # -- checkpoints: the replayed latents are state, so that a resumed run continues exactly
    def state_tensors(self) -> dict[str, torch.Tensor]:
        return replay_tensors(self.replay)

    def load_state(self, tensors: dict[str, torch.Tensor], device) -> None:
        self.replay = replay_loaded(tensors, device)


class LatentShape(LatentDistance):
    """Each latent dimension, standardised by its median and interquartile range over the batch and the last
    ``replay`` steps, pulled towards a standard normal's shape (its Wasserstein-1 distance from one): no dense band
    in which an attribute could hide in differences too small for the latent adversary's reader. Needs no labels.
    :class:`LatentDistance` with no readings and ``shape: 1``; the weight is the recipe's."""

    def __init__(self, env: TermEnv, replay: int = 8, warmup: int = 500):
        super().__init__(env, projections=0, axes=False, replay=replay, warmup=warmup, shape=1.0)
