"""Attribute codes: labels <-> one-hot blocks, slider values, and the flipped targets of the adversary."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from .errors import FaderkitError
from .interfaces import Attribute


def blocks(attributes: Sequence[Attribute]) -> list[slice]:
    """Where each attribute's block sits in the code / logits vector."""
    out, start = [], 0
    for a in attributes:
        out.append(slice(start, start + a.size))
        start += a.size
    return out


def labels_to_code(labels: torch.Tensor, attributes: Sequence[Attribute]) -> torch.Tensor:
    """int64 (B, A) value indices -> float (B, code_dim) one-hot blocks ([1, 0] absent, [0, 1] present)."""
    parts = [F.one_hot(labels[:, i], a.size) for i, a in enumerate(attributes)]
    return torch.cat(parts, dim=1).float()


def logits_to_labels(logits: torch.Tensor, attributes: Sequence[Attribute]) -> torch.Tensor:
    return torch.stack([logits[:, s].argmax(1) for s in blocks(attributes)], dim=1)


def logits_to_code(logits: torch.Tensor, attributes: Sequence[Attribute]) -> torch.Tensor:
    """Soft code: each block's softmax (the classifier's belief, used for attributes the user leaves alone)."""
    return torch.cat([logits[:, s].softmax(1) for s in blocks(attributes)], dim=1)


def attribute_loss(logits: torch.Tensor, labels: torch.Tensor, attributes: Sequence[Attribute]) -> torch.Tensor:
    """Sum over attributes of the cross-entropy of each block against its label."""
    return sum(F.cross_entropy(logits[:, s], labels[:, i]) for i, s in enumerate(blocks(attributes)))


def flipped_labels(labels: torch.Tensor, attributes: Sequence[Attribute], generator=None) -> torch.Tensor:
    """The adversary's target: binary attributes flipped, n-valued ones a uniformly random *other* value."""
    out = labels.clone()
    for i, a in enumerate(attributes):
        if a.size == 2:
            out[:, i] = 1 - labels[:, i]
        else:
            shift = torch.randint(1, a.size, labels[:, i].shape, generator=generator, device=labels.device)
            out[:, i] = (labels[:, i] + shift) % a.size
    return out


#: The largest slider magnitude accepted; the paper extrapolates to about 2.
MAX_SLIDER = 10.0


def parse_value(attribute: Attribute, raw: str | float) -> list[float]:
    """A slider setting -> the attribute's code block.

    Binary: a number a gives [1 - a, a]; values outside [0, 1] extrapolate, as in the paper.
    n-valued: a value name (``color=yellow``) gives that value's one-hot.
    """
    if isinstance(raw, str) and raw in attribute.values and not attribute.binary:
        return [1.0 if v == raw else 0.0 for v in attribute.values]
    if not attribute.binary:
        raise FaderkitError(
            f"{attribute.name}={raw}: not one of its values ({', '.join(attribute.values)})"
        )
    try:
        a = float(raw)
    except (TypeError, ValueError, OverflowError):
        raise FaderkitError(f"{attribute.name}={raw!s}: expected a number such as 0, 0.5 or 1") from None
    if a != a or a in (float("inf"), float("-inf")):
        raise FaderkitError(f"{attribute.name}={raw!s}: expected a finite number")
    if abs(a) > MAX_SLIDER:
        raise FaderkitError(f"{attribute.name}={raw!s}: sliders go from -{MAX_SLIDER:g} to {MAX_SLIDER:g} "
                            "(0 absent, 1 present; beyond only saturates the image)")
    return [1.0 - a, a]


def apply_settings(
    code: torch.Tensor, attributes: Sequence[Attribute], settings: Mapping[str, str | float]
) -> torch.Tensor:
    """Overwrite the blocks of the attributes named in ``settings``; the others keep their values."""
    names = [a.name for a in attributes]
    code = code.clone()
    for name, raw in settings.items():
        if name not in names:
            raise FaderkitError(f"unknown attribute '{name}'; this model has: {', '.join(names)}")
        i = names.index(name)
        block = blocks(attributes)[i]
        code[:, block] = torch.tensor(parse_value(attributes[i], raw), dtype=code.dtype, device=code.device)
    return code
