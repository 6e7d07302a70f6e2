"""Choosing the torch device from what a user typed, with a one-line error when it cannot be had."""

from __future__ import annotations

import platform
from pathlib import Path

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


def configure_backends(device: torch.device, tf32: bool = True) -> None:
    """CUDA: cudnn.benchmark (training shapes are fixed, so the fastest kernel is picked once) and TF32 for
    fp32 matmuls and convolutions (``train.speed.tf32``). Nothing on other devices."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    mode = "tf32" if tf32 else "ieee"
    if hasattr(torch.backends.cudnn, "conv") and hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = mode  # torch >= 2.9's interface
        torch.backends.cudnn.conv.fp32_precision = mode
    else:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def describe(device: torch.device) -> str:
    """The device in a few words: the GPU's name and memory, or the CPU's name and torch's threads."""
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        return f"{device} ({p.name}, {p.total_memory / 2**30:.0f} GiB, compute capability {p.major}.{p.minor})"
    if device.type == "cpu":
        cuda = "" if torch.version.cuda else "; this torch is CPU-only"
        return f"cpu ({cpu_name()}, {torch.get_num_threads()} threads{cuda})"
    return str(device)


def gpu_recipe_on_cpu(device: torch.device, image_size: int) -> str | None:
    """A warning when a recipe sized for a GPU (128 px and up: the CelebA recipes, whose comments say so)
    is about to train on the CPU, or None."""
    if device.type != "cpu" or image_size < 128:
        return None
    why = ("this torch has no CUDA support (install a CUDA build of torch)" if not torch.version.cuda
           else "no CUDA GPU is visible" if not torch.cuda.is_available() else "the recipe or --device asks for the CPU")
    return (f"warning: a {image_size} px recipe is sized for a GPU, and it trains on the CPU: {why}. "
            "Expect hours per 1,000 steps (benchmarks/recipe_time.py)")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags (Linux), or None where they cannot be read."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return None
