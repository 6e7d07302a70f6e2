"""Choosing the torch device from what a user typed, with a one-line error when it cannot be had."""

from __future__ import annotations

import torch

from .errors import FaderkitError


def pick_device(name: str | torch.device) -> torch.device:
    """``auto`` (the GPU when there is one), ``cpu``, ``cuda`` or ``cuda:N``."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise FaderkitError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise FaderkitError(f"device '{name}' asked for, but this machine has no CUDA GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise FaderkitError(f"device '{name}' asked for, but this machine has {torch.cuda.device_count()} GPU(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise FaderkitError(f"device '{name}' asked for, but this machine has no Apple GPU; use --device cpu")
    elif dev.type not in ("cpu", "mps"):
        raise FaderkitError(f"unsupported device '{name}'; use auto, cpu, cuda or cuda:N")
    return dev
