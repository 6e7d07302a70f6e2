"""Which floating-point precision a run trains in: ``train.speed.amp`` (auto, off, bf16, fp16) resolved per device.

``auto`` takes bf16 only where it measurably pays: a CUDA GPU with bf16 units (compute capability 8.0
and up), or a CPU whose bf16 convolutions beat fp32 in a short calibration (under a second, run once
per CPU kind and torch version, cached in the user's cache folder). CPUs without AVX512_BF16 or
AMX-BF16 emulate bf16 and lose, so there ``auto`` is fp32 without calibrating. fp16 is CUDA-only and
comes with a gradient scaler; bf16 needs none (fp32's exponent range).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import machine_cache
from .device import cpu_flags, cpu_name, pick_device
from .errors import FaderkitError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
#: bf16 must take at most this share of fp32's time in the calibration for ``auto`` to pick it
PAYS_BELOW = 0.8
CACHE_VERSION = 1


@dataclass(frozen=True)
class Precision:
    name: str  # fp32, bf16 or fp16
    device_type: str
    why: str  # one phrase: how it was chosen

    @property
    def dtype(self) -> torch.dtype:
        return DTYPES[self.name]

    def autocast(self) -> torch.autocast:
        """The autocast context of the training step (disabled in fp32)."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.name != "fp32")

    def grad_scaler(self) -> torch.amp.GradScaler | None:
        """fp16's loss scaler (fp16's small exponent range underflows small gradients); None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.name == "fp16" else None

    def __str__(self) -> str:
        return f"{self.name} ({self.why})"


def resolve(amp: str | bool, device: torch.device, stored: str | None = None) -> Precision:
    """``train.speed.amp`` on ``device``; ``stored``: the precision a resumed run's checkpoint was trained in,
    kept when ``amp`` is auto (a run does not change precision half-way because the machine did)."""
    device = torch.device(device)
    amp = "off" if amp is False or amp in ("false", "fp32") else amp
    if amp == "off":
        return Precision("fp32", device.type, "train.speed.amp off")
    if amp in ("bf16", "fp16"):
        _check_available(amp, device)
        return Precision(amp, device.type, f"train.speed.amp {amp}")
    if amp != "auto":
        raise FaderkitError(f"unknown train.speed.amp '{amp}'; use auto, off, bf16 or fp16")
    if stored in DTYPES:
        try:
            _check_available(stored, device)
            return Precision(stored, device.type, "auto: the run's own precision, from its checkpoint")
        except FaderkitError:
            pass  # e.g. an fp16 GPU run resumed on a CPU: choose afresh
    if device.type == "cuda":
        major, minor = torch.cuda.get_device_capability(device)
        if major >= 8:
            return Precision("bf16", "cuda", f"auto: bf16 units (compute capability {major}.{minor})")
        return Precision("fp32", "cuda", f"auto: no bf16 units (compute capability {major}.{minor}); "
                         "train.speed.amp fp16 may pay here")
    if device.type == "cpu":
        return _cpu_auto()
    return Precision("fp32", device.type, f"auto: mixed precision not measured on {device.type}")


def _check_available(name: str, device: torch.device) -> None:
    if name == "fp16" and device.type != "cuda":
        raise FaderkitError(f"train.speed.amp fp16 needs a CUDA GPU (this run is on {device.type}); use bf16 or off")
    if name == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise FaderkitError("train.speed.amp bf16: this GPU has no bf16 support; use fp16 or off")


# -- the CPU's calibration
def bf16_flags(flags: set[str] | None) -> list[str]:
    return sorted(f for f in ("amx_bf16", "avx512_bf16") if f in (flags or ()))


def cache_file() -> Path:
    """``precision.json`` in faderkit's cache folder (faderkit/machine_cache.py)."""
    return machine_cache.cache_file("precision.json")


def _cpu_auto() -> Precision:
    flags = cpu_flags()
    units = bf16_flags(flags)
    if flags is not None and not units:
        return Precision("fp32", "cpu", "auto: this CPU has no bf16 units (no avx512_bf16, amx_bf16): bf16 is emulated")
    key = f"{cpu_name()}|{','.join(units) or '?'}|torch {torch.__version__}|v{CACHE_VERSION}"
    path = cache_file()
    cached = machine_cache.read(path).get(key)
    if not (isinstance(cached, dict) and isinstance(cached.get("ratio"), (int, float))):
        cached = calibrate()
        machine_cache.store(path, key, cached)
    ratio = cached["ratio"]
    pick = "bf16" if ratio <= PAYS_BELOW else "fp32"
    return Precision(pick, "cpu", f"auto: bf16 took {ratio:.2f}x fp32's time in this CPU's calibration "
                     f"({', '.join(units) or 'flags unknown'}; cached in {path})")


def calibrate(repeats: int = 3) -> dict:
    """Seconds of a Fader encoder layer's forward and backward (batch 8, 32 -> 64 maps, 4x4 stride 2, 64 px) in
    fp32 and under bf16 autocast, interleaved, best of ``repeats`` (the least disturbed by other load);
    ``ratio`` = bf16 / fp32."""
    g = torch.Generator().manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 4, 2, 1)
    x = torch.randn(8, 32, 64, 64, generator=g)

    def step(enabled: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=enabled):
            y = conv(x)
        y.float().square().mean().backward()
        conv.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    step(False), step(True)  # first calls pick and build oneDNN's kernels
    fp32, bf16 = [], []
    for _ in range(repeats):
        fp32.append(step(False))
        bf16.append(step(True))
    return {"fp32_s": min(fp32), "bf16_s": min(bf16), "ratio": round(min(bf16) / min(fp32), 3),
            "measured": time.strftime("%Y-%m-%d %H:%M:%S")}


def choice_line(recipe, device: str | None = None) -> str:
    """What ``train.speed.amp`` resolves to for ``recipe`` on this machine, as ``--print-recipe`` shows it."""
    dev = pick_device(device or recipe.train.speed.device)
    chosen = resolve(recipe.train.speed.amp, dev)
    return f"train.speed.amp {recipe.train.speed.amp} -> {chosen.name} on {dev.type} ({chosen.why})"
