"""Convolutions with a tiny output computed as one matrix product.

On the CPU, oneDNN is slow on the Fader Network's deepest layers: a 4x4 stride-2 convolution with an
output of at most 4x4 pixels but hundreds of channels (the encoder's last layer, the decoder's first,
the latent discriminator's conv). There, unfold + matmul (and matmul + fold for the transposed
convolution) is 1.5x to 5x faster forward and backward on 2 CPU cores (benchmarks/train_throughput.py).
When switched on (GEMM_MAX_SIDE) it is the same convolution: same parameters, same state_dict, the same sums in another order, so
results differ only by floating-point rounding. Other sizes, and other devices, use torch's own kernel.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

#: the largest output side (conv) or input side (transposed conv) computed by matmul; 0 = off. Off by
#: default: layer by layer it wins (1 thread), in the whole iteration on the busy 2-core machine it has not yet
#: shown a gain (benchmarks/train_throughput.py, row smallconv): switch on with FADERKIT_SMALLCONV=4.
GEMM_MAX_SIDE = int(os.environ.get("FADERKIT_SMALLCONV", "0") or 0)


def _plain(m: nn.Module) -> bool:
    return (m.groups == 1 and m.dilation == (1, 1) and m.padding_mode == "zeros"
            and isinstance(m.padding, tuple) and m.kernel_size[0] == m.kernel_size[1])


class SmallConv2d(nn.Conv2d):
    """nn.Conv2d; outputs of at most GEMM_MAX_SIDE x GEMM_MAX_SIDE on the CPU as unfold + matmul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p = self.kernel_size[0], self.stride, self.padding
        ho, wo = ((x.shape[2] + 2 * p[0] - k) // s[0] + 1), ((x.shape[3] + 2 * p[1] - k) // s[1] + 1)
        if x.device.type != "cpu" or x.dim() != 4 or max(ho, wo) > GEMM_MAX_SIDE or not _plain(self):
            return super().forward(x)
        cols = F.unfold(x, self.kernel_size, padding=p, stride=s).transpose(1, 2)  # (B, ho*wo, C*k*k)
        y = F.linear(cols, self.weight.flatten(1), self.bias)  # one (B*ho*wo, C*k*k) x (C*k*k, O) product
        return y.transpose(1, 2).reshape(x.shape[0], self.out_channels, ho, wo)


class SmallConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d; inputs of at most GEMM_MAX_SIDE x GEMM_MAX_SIDE on the CPU as matmul + fold."""

    def forward(self, x: torch.Tensor, output_size=None) -> torch.Tensor:
        if (x.device.type != "cpu" or x.dim() != 4 or output_size is not None or max(x.shape[2:]) > GEMM_MAX_SIDE
                or not _plain(self) or self.output_padding != (0, 0)):
            return super().forward(x, output_size)
        k, s, p = self.kernel_size[0], self.stride, self.padding
        ho, wo = (x.shape[2] - 1) * s[0] - 2 * p[0] + k, (x.shape[3] - 1) * s[1] - 2 * p[1] + k
        # one (B*h*w, C) x (C, O*k*k) product, then the overlapping k x k patches summed into place
        cols = torch.matmul(x.flatten(2).transpose(1, 2), self.weight.flatten(1)).transpose(1, 2)
        y = F.fold(cols, (ho, wo), self.kernel_size, padding=p, stride=s)
        if self.bias is not None:
            y = y + self.bias[:, None, None]
        return y
