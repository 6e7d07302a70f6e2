"""Convolutions that take, layer by layer, the fastest CPU path for their shape, measured on the machine.

On the CPU, torch's convolutions go to oneDNN, whose speed depends heavily on the layer's shape, the
precision (fp32, or bf16 under autocast) and the CPU (benchmarks/train_throughput.py). The same
convolution can be computed in several ways:

- ``nchw`` / ``nhwc``: oneDNN on the input in the default layout or in channels_last. channels_last is
  1.2x to 1.7x faster on large images with few channels (the first encoder and last decoder layers);
- ``matmul``: one matrix product, unfold + matmul or matmul + fold for the transposed convolution. 1.4x
  to 6x faster on a tiny output with many channels (the encoder's last layer, the decoder's first, the
  latent discriminator's conv: 2x2 or 4x4 outputs of 256..512 maps);
- ``subpix`` (the paper's 4x4 stride-2 transposed convolution): its four output phases as one 3x3
  convolution with four times the output maps, then a pixel shuffle (the weight rearranged on the fly,
  zero where a phase uses no tap). 1.4x faster than oneDNN's transposed kernel on the 3-map last layer
  at 256 px in bf16 on an AMX Xeon; slower in fp32 there.

Which is fastest differs by CPU and precision, so by default each layer shape is **measured** at its
first training call: every candidate's forward and backward on the call's own input, interleaved, best
of three, and the fastest kept (like cudnn.benchmark on a GPU). The choices are cached per CPU model,
torch version and thread count in the user's cache folder (``cpuconv.json`` beside precision.json), so
later runs on the machine take the same paths without measuring, and a fixed seed's run repeats
exactly. Calls without gradients (eval, edit), distributed runs and a model put in channels_last as a
whole (recipe ``train.speed.channels_last``) use the fixed rules below instead.

Every path is the same convolution: same parameters, same state_dict, the same sums in another order,
so results differ only by floating-point rounding. Other devices use torch's kernel unchanged.
``FADERKIT_CPUCONV=static`` uses the fixed rules only (measured on a 2-core AVX2 machine),
``FADERKIT_CPUCONV=0`` turns cpuconv off.
"""

from __future__ import annotations

import math
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from . import machine_cache
from .device import cpu_name

MODE = os.environ.get("FADERKIT_CPUCONV", "1").strip().lower()
#: each switched on unless FADERKIT_CPUCONV=0 (the benchmark switches them per row)
MATMUL = LAYOUT = MODE not in ("0", "off")
#: measure each shape's paths (needs MATMUL and LAYOUT on); FADERKIT_CPUCONV=static: the fixed rules only
TUNE = MODE not in ("0", "off", "static")
CACHE_VERSION = 1
#: shapes measured (or read from the cache) in this process: key -> path
_CHOICES: dict[str, str] = {}
_LOADED: set[str] = set()


def matmul_wins(positions: int, in_features: int) -> bool:
    """Output positions (conv) / input positions (transposed) of at most 2x2, or 4x4 with >= 512*16 inputs each."""
    return positions <= 4 or (positions <= 16 and in_features >= 512 * 16)


def channels_last_wins(channels: int, side: int) -> bool:
    """Input of at most 80 channels (64 maps plus an attribute code) and at least 32 pixels a side."""
    return channels <= 80 and side >= 32


def _plain(m: nn.Module) -> bool:
    return (m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros" and isinstance(m.padding, tuple)
            and m.kernel_size[0] == m.kernel_size[1])


def _subpix_ok(m: nn.Module) -> bool:
    return (isinstance(m, nn.ConvTranspose2d) and m.kernel_size == (4, 4) and m.stride == (2, 2)
            and m.padding == (1, 1) and m.output_padding == (0, 0))


def _static(m: nn.Module, x: torch.Tensor, positions: int) -> str:
    """The fixed rules (a 2-core AVX2 machine's measurements)."""
    if MATMUL and matmul_wins(positions, m.weight.shape[1 if isinstance(m, nn.Conv2d) else 0] * m.kernel_size[0] ** 2):
        return "matmul"
    if not LAYOUT:
        return "torch"
    return "nhwc" if channels_last_wins(x.shape[1], min(x.shape[2:])) else "nchw"


def _path(m: nn.Module, x: torch.Tensor, positions: int) -> str:
    if (x.device.type != "cpu" or x.dim() != 4 or not _plain(m)
            or m.weight.is_contiguous(memory_format=torch.channels_last) and m.weight.shape[2] > 1):
        return "torch"
    if TUNE and MATMUL and LAYOUT and _tunable(m, x):
        return _measured(m, x, positions)
    return _static(m, x, positions)


def _tunable(m: nn.Module, x: torch.Tensor) -> bool:
    if not torch.is_grad_enabled() or not (x.requires_grad or m.weight.requires_grad):
        return False
    if torch.compiler.is_compiling():
        return False
    return not (torch.distributed.is_available() and torch.distributed.is_initialized())


def _candidates(m: nn.Module, positions: int) -> list[str]:
    paths = ["nchw", "nhwc"]
    if positions <= 64:  # the matmul path is many times slower on larger outputs: not worth measuring there
        paths.append("matmul")
    if _subpix_ok(m):
        paths.append("subpix")
    return paths


def _key(m: nn.Module, x: torch.Tensor) -> str:
    ac = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
    return (f"{type(m).__name__}|x{tuple(x.shape)}:{str(x.dtype)[6:]}|w{tuple(m.weight.shape)}:{str(m.weight.dtype)[6:]}"
            f"|s{m.stride[0]}p{m.padding[0]}|b{int(m.bias is not None)}|g{int(x.requires_grad)}"
            f"|autocast {str(ac)[6:] if ac else 'off'}{_layout_tag(x)}")


def is_channels_last(x: torch.Tensor) -> bool:
    """A 4-d tensor laid out channels_last and not NCHW (a map with one pixel or one channel is both: NCHW)."""
    return x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)


def _layout_tag(x: torch.Tensor) -> str:
    """'' for an NCHW input (the keys as before), '|nhwc-in' for a channels_last one: a layer whose input already
    comes in channels_last pays no copy on the nhwc path, so its choice is measured apart."""
    return "|nhwc-in" if is_channels_last(x) else ""


def _machine() -> str:
    return f"{cpu_name()}|torch {torch.__version__}|{torch.get_num_threads()} threads|v{CACHE_VERSION}"


def cache_file():
    """``cpuconv.json`` in faderkit's cache folder, beside precision.json (faderkit/machine_cache.py)."""
    return machine_cache.cache_file("cpuconv.json")


def _measured(m: nn.Module, x: torch.Tensor, positions: int) -> str:
    machine = _machine()
    key = f"{machine}|{_key(m, x)}"
    if key not in _CHOICES and machine not in _LOADED:
        _LOADED.add(machine)
        _CHOICES.update({f"{machine}|{k}": v for k, v in _stored(machine).items() if isinstance(v, str)})
    candidates = _candidates(m, positions)
    path = _CHOICES.get(key)
    if path in candidates:
        return path
    path, _ = measure(m, x, candidates)
    _CHOICES[key] = path
    _store(machine, _key(m, x), path)
    return path


def _stored(machine: str) -> dict:
    """This machine's choices in the cache file (one object per CPU model, torch version and thread count)."""
    entries = machine_cache.read(cache_file()).get(machine)
    return entries if isinstance(entries, dict) else {}


def measure(m: nn.Module, x: torch.Tensor, paths: list[str], repeats: int = 3) -> tuple[str, dict[str, float]]:
    """Seconds of ``m``'s forward and backward on ``x`` by each path (interleaved, best of ``repeats`` after a
    warm-up that lets oneDNN build its kernels), and the fastest path. Gradients go to no ``.grad``: the
    measurement leaves the module and the caller's graph as they were."""
    xs = x.detach().requires_grad_(x.requires_grad)
    inputs = [p for p in (m.weight, m.bias) if p is not None and p.requires_grad] + ([xs] if xs.requires_grad else [])
    best = {p: math.inf for p in paths}

    def once(path: str) -> float:
        t0 = time.perf_counter()
        y = m._run(xs, path)
        torch.autograd.grad(y, inputs, torch.ones_like(y))
        return time.perf_counter() - t0

    for p in paths:
        once(p)
    for _ in range(repeats):
        for p in paths:
            best[p] = min(best[p], once(p))
    return min(paths, key=best.__getitem__), best


def _store(machine: str, key: str, path: str) -> None:
    machine_cache.store(cache_file(), machine, {key: path}, merge=True)


#: conv: a 3x3 tap per (input phase, offset -1/0/+1) of the 4x4 stride-2 kernel; transposed: per output phase
_SUBPIX_TAPS = torch.tensor([[3, 1, 4], [4, 2, 0]])  # 4: no tap (the padded zero)


def subpixel_weight(w: torch.Tensor) -> torch.Tensor:
    """A 4x4 stride-2 padding-1 transposed convolution's weight (in, out, 4, 4) as the (out * 4, in, 3, 3) weight of
    the 3x3 convolution whose output maps, pixel-shuffled by 2, are the transposed convolution's output."""
    i, o = w.shape[:2]
    taps = _SUBPIX_TAPS.to(w.device)
    ky = taps[:, None, :, None].expand(2, 2, 3, 3)
    kx = taps[None, :, None, :].expand(2, 2, 3, 3)
    g = F.pad(w, (0, 1, 0, 1))[:, :, ky, kx]  # (in, out, phase y, phase x, 3, 3)
    return g.permute(1, 2, 3, 0, 4, 5).reshape(o * 4, i, 3, 3)


class CPUConv2d(nn.Conv2d):
    def _out_hw(self, x: torch.Tensor) -> tuple[int, int]:
        k, s, p = self.kernel_size[0], self.stride, self.padding
        return (x.shape[2] + 2 * p[0] - k) // s[0] + 1, (x.shape[3] + 2 * p[1] - k) // s[1] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ho, wo = self._out_hw(x)
        return self._run(x, _path(self, x, ho * wo))

    def _run(self, x: torch.Tensor, path: str) -> torch.Tensor:
        if path == "matmul":
            s, p = self.stride, self.padding
            ho, wo = self._out_hw(x)
            # one (B*ho*wo, C*k*k) x (C*k*k, O) product (2-d operands: a 3-d one can make torch broadcast the
            # weight over the batch and sum its gradient back, hundreds of MB at these sizes)
            cols = F.unfold(x, self.kernel_size, padding=p, stride=s).transpose(1, 2)
            cols = cols.reshape(-1, self.weight[0].numel())
            y = F.linear(cols, self.weight.flatten(1), self.bias)
            return y.view(x.shape[0], ho, wo, self.out_channels).permute(0, 3, 1, 2)  # NHWC strides, no copy
        if path != "torch":
            x = x.contiguous(memory_format=torch.channels_last if path == "nhwc" else torch.contiguous_format)
        return super().forward(x)


class CPUConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        path = "torch" if output_size is not None or self.output_padding != (0, 0) else \
            _path(self, x, x.shape[2] * x.shape[3] if x.dim() == 4 else 0)
        return self._run(x, path, output_size)

    def _run(self, x: torch.Tensor, path: str, output_size=None) -> torch.Tensor:
        if path == "matmul":
            k, s, p = self.kernel_size[0], self.stride, self.padding
            ho, wo = (x.shape[2] - 1) * s[0] - 2 * p[0] + k, (x.shape[3] - 1) * s[1] - 2 * p[1] + k
            # one (B*h*w, C) x (C, O*k*k) product, then the overlapping k x k patches summed into place
            rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (B*h*w, C)
            cols = torch.mm(rows, self.weight.flatten(1)).view(x.shape[0], -1, self.weight[0].numel())
            y = F.fold(cols.transpose(1, 2), (ho, wo), self.kernel_size, padding=p, stride=s)
            return y if self.bias is None else y + self.bias[:, None, None]
        if path == "subpix":
            x = x.contiguous(memory_format=torch.channels_last)
            bias = None if self.bias is None else self.bias.repeat_interleave(4)
            return F.pixel_shuffle(F.conv2d(x, subpixel_weight(self.weight), bias, padding=1), 2)
        if path != "torch":
            x = x.contiguous(memory_format=torch.channels_last if path == "nhwc" else torch.contiguous_format)
        return super().forward(x, output_size)
