"""The edits eval makes: each attribute flipped alone, shown in every output mode."""

from __future__ import annotations

import numpy as np
import torch

from ..interfaces import Attribute
from ..model import OUTPUT_MODES, edited


def target_labels(y: torch.Tensor, attr: Attribute) -> torch.Tensor:
    """The flip of one attribute: binary 1 - y; n-valued the next value (deterministic)."""
    return 1 - y if attr.binary else (y + 1) % attr.size


def target_block(target: torch.Tensor, attr: Attribute, alpha: float) -> torch.Tensor:
    """Binary: [1 - a, a] with a = alpha towards 1 and 1 - alpha towards 0; n-valued: the one-hot."""
    if not attr.binary:
        return torch.nn.functional.one_hot(target, attr.size).float()
    a = torch.where(target == 1, torch.tensor(alpha), torch.tensor(1.0 - alpha)).to(target.device).float()
    return torch.stack([1 - a, a], 1)


def in_modes(x: torch.Tensor, recon: torch.Tensor, decoded: torch.Tensor, mask: torch.Tensor | None = None
             ) -> dict[str, torch.Tensor]:
    """The edit D(z, y') = ``decoded`` of images ``x`` (reconstructed as ``recon``) in every output mode; ``mask``:
    the local mode's (:meth:`faderkit.model.Encoded.mask`)."""
    return {mode: edited(x, recon, decoded, mode, mask) for mode in OUTPUT_MODES}


def unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return x.clamp(-1, 1).add(1).div(2)


def batches(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))
