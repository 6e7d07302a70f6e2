"""The autoencoder's reconstruction loss: on the pixels (the paper's mean squared error, or L1), and optionally
on the differences between neighbouring pixels, where thin features (a smile's line, a glasses frame) weigh
far more than in the pixels' own error."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss}


def reconstruction_loss(recon: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    return LOSSES[kind](recon, x)


def edges(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical differences between neighbouring pixels of an NCHW batch (slices, not torch.diff:
    the same values, but torch.diff's backward sums the gradient in another order, which moved the quickstart's
    trajectory)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def edge_loss(recon: torch.Tensor, x: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """The same loss on the two images' edges, horizontal and vertical averaged."""
    (rh, rv), (xh, xv) = edges(recon), edges(x)
    return (LOSSES[kind](rh, xh) + LOSSES[kind](rv, xv)) / 2


def coarse_loss(recon: torch.Tensor, x: torch.Tensor, pool: int = 4, kind: str = "mse") -> torch.Tensor:
    """The loss between the two images averaged over ``pool`` x ``pool`` blocks: their colours and shading, which
    the edges' loss cannot see (a constant offset has no edges)."""
    return LOSSES[kind](F.avg_pool2d(recon, pool, ceil_mode=True), F.avg_pool2d(x, pool, ceil_mode=True))
