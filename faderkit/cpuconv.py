"""Convolutions that take, layer by layer, the fastest CPU path for their shape.

On the CPU, torch's convolutions go to oneDNN, whose speed depends heavily on the layer's shape
(measured per layer, forward and backward, on a 2-core AVX2 machine: benchmarks/train_throughput.py):

- a tiny output with many input channels (the Fader encoder's last layer, the decoder's first, the
  latent discriminator's conv: 2x2 or 4x4 outputs of 256..512 maps) is 1.4x to 6x faster as one matrix
  product: unfold + matmul, or matmul + fold for the transposed convolution (``MATMUL``);
- a large image with few channels (the first two or three encoder layers, the last two decoder layers)
  is 1.2x to 1.7x faster in channels_last (NHWC) memory layout; wider layers are faster in NCHW
  (``CHANNELS_LAST``).

It is the same convolution: same parameters, same state_dict, the same sums in another order, so results
differ only by floating-point rounding. Other devices use torch's kernel unchanged, and so does a model
put in channels_last as a whole (recipe ``train.speed.channels_last``). ``FADERKIT_CPUCONV=0`` turns both off.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

#: each switched on unless FADERKIT_CPUCONV=0 (the benchmark switches them per row)
MATMUL = LAYOUT = os.environ.get("FADERKIT_CPUCONV", "1") != "0"


def matmul_wins(positions: int, in_features: int) -> bool:
    """Output positions (conv) / input positions (transposed) of at most 2x2, or 4x4 with >= 512*16 inputs each."""
    return positions <= 4 or (positions <= 16 and in_features >= 512 * 16)


def channels_last_wins(channels: int, side: int) -> bool:
    """Input of at most 80 channels (64 maps plus an attribute code) and at least 32 pixels a side."""
    return channels <= 80 and side >= 32


def _plain(m: nn.Module) -> bool:
    return (m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros" and isinstance(m.padding, tuple)
            and m.kernel_size[0] == m.kernel_size[1])


def _path(m: nn.Module, x: torch.Tensor, positions: int) -> str:
    if (x.device.type != "cpu" or x.dim() != 4 or not _plain(m)
            or m.weight.is_contiguous(memory_format=torch.channels_last) and m.weight.shape[2] > 1):
        return "torch"
    if MATMUL and matmul_wins(positions, m.weight.shape[1 if isinstance(m, nn.Conv2d) else 0] * m.kernel_size[0] ** 2):
        return "matmul"
    if not LAYOUT:
        return "torch"
    return "nhwc" if channels_last_wins(x.shape[1], min(x.shape[2:])) else "nchw"


class CPUConv2d(nn.Conv2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p = self.kernel_size[0], self.stride, self.padding
        ho, wo = (x.shape[2] + 2 * p[0] - k) // s[0] + 1, (x.shape[3] + 2 * p[1] - k) // s[1] + 1
        path = _path(self, x, ho * wo)
        if path == "matmul":
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
        if path == "matmul":
            k, s, p = self.kernel_size[0], self.stride, self.padding
            ho, wo = (x.shape[2] - 1) * s[0] - 2 * p[0] + k, (x.shape[3] - 1) * s[1] - 2 * p[1] + k
            # one (B*h*w, C) x (C, O*k*k) product, then the overlapping k x k patches summed into place
            rows = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])  # (B*h*w, C)
            cols = torch.mm(rows, self.weight.flatten(1)).view(x.shape[0], -1, self.weight[0].numel())
            y = F.fold(cols.transpose(1, 2), (ho, wo), self.kernel_size, padding=p, stride=s)
            return y if self.bias is None else y + self.bias[:, None, None]
        if path != "torch":
            x = x.contiguous(memory_format=torch.channels_last if path == "nhwc" else torch.contiguous_format)
        return super().forward(x, output_size)
