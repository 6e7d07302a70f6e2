"""The matmul convolutions compute what torch's convolutions compute (up to rounding), forward and backward."""

import pytest
import torch
from torch import nn

from faderkit import smallconv
from faderkit.smallconv import SmallConv2d, SmallConvTranspose2d


def _grads(module, x):
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y.detach(), x.grad, [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("side,bias,channels_last", [(2, True, False), (4, False, False), (4, True, True), (1, True, False)])
def test_matches_torch_forward_and_backward(transposed, side, bias, channels_last, monkeypatch):
    monkeypatch.setattr(smallconv, "GEMM_MAX_SIDE", 4)
    torch.manual_seed(0)
    cls, ref_cls = (SmallConvTranspose2d, nn.ConvTranspose2d) if transposed else (SmallConv2d, nn.Conv2d)
    small, ref = cls(6, 5, 4, 2, 1, bias=bias), ref_cls(6, 5, 4, 2, 1, bias=bias)
    ref.load_state_dict(small.state_dict())  # the same parameters, the same state_dict keys
    in_side = side if transposed else side * 2
    x = torch.randn(3, 6, in_side, in_side)
    if channels_last:
        x, small = x.contiguous(memory_format=torch.channels_last), small.to(memory_format=torch.channels_last)
    got, want = _grads(small, x), _grads(ref, x)
    assert got[0].shape == want[0].shape
    for a, b in zip([got[0], got[1], *got[2]], [want[0], want[1], *want[2]]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_uses_matmul_only_for_tiny_outputs(monkeypatch):
    monkeypatch.setattr(smallconv, "GEMM_MAX_SIDE", 4)
    calls = []
    real = torch.nn.functional.unfold
    monkeypatch.setattr(torch.nn.functional, "unfold", lambda *a, **k: calls.append(1) or real(*a, **k))
    conv = SmallConv2d(3, 4, 4, 2, 1)
    conv(torch.randn(1, 3, 8, 8))  # 4x4 output: matmul
    assert calls == [1]
    conv(torch.randn(1, 3, 16, 16))  # 8x8 output: torch's kernel
    assert calls == [1]
    monkeypatch.setattr(smallconv, "GEMM_MAX_SIDE", 0)  # switched off (the benchmark's lever row)
    conv(torch.randn(1, 3, 8, 8))
    assert calls == [1]
