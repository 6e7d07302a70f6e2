"""A batch's quantiles per column, computed along contiguous memory.

``torch.quantile(x, q, dim=0)`` on a batch of latents (n, d) sorts each column where it lies strided in memory:
on a 2-core CPU, 0.75 ms for a (16, 1024) batch, ten times the 0.07 ms of sorting its transpose made contiguous.
The latent reader and the shape prior do this up to seven times a training step. The values are torch.quantile's
(linear interpolation, the same ``lerp``); the gradient reaches the sorted values as through torch.quantile.
"""

from __future__ import annotations

import torch


def sorted_columns(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The columns of ``x`` (n, k) as sorted rows (k, n), with the sort's indices."""
    return x.t().contiguous().sort(dim=1)


def row_quantiles(v: torch.Tensor, q: list[float]) -> torch.Tensor:
    """Quantiles ``q`` of each sorted row of ``v`` (k, n), interpolated as torch.quantile does: (k, len(q))."""
    n = v.shape[1]
    pos = torch.tensor(q, dtype=torch.float64) * (n - 1)
    lo = pos.floor().long()
    hi = (lo + 1).clamp(max=n - 1)
    frac = (pos - pos.floor()).to(v.dtype).to(v.device)
    return torch.lerp(v[:, lo.to(v.device)], v[:, hi.to(v.device)], frac)


def column_quantiles(x: torch.Tensor, q: list[float]) -> torch.Tensor:
    """``torch.quantile(x, torch.tensor(q), dim=0)`` for a 2-d ``x`` (n, d): (len(q), d), the same values."""
    return row_quantiles(sorted_columns(x)[0], q).t()
