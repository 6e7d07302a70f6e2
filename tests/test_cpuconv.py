"""The matmul convolutions compute what torch's convolutions compute (up to rounding), forward and backward."""

import pytest
import torch
from torch import nn

from faderkit import cpuconv
from faderkit.cpuconv import CPUConv2d, CPUConvTranspose2d


def _grads(module, x):
    x = x.clone().requires_grad_(True)
    y = module(x)
    y.backward(torch.linspace(-1, 1, y.numel()).view_as(y))
    return y.detach(), x.grad, [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("side,bias,channels_last",
                         [(2, True, False), (4, False, False), (4, True, True), (1, True, False)])
def test_matches_torch_forward_and_backward(transposed, side, bias, channels_last, monkeypatch):
    monkeypatch.setattr(cpuconv, "MATMUL", True)
    monkeypatch.setattr(cpuconv, "LAYOUT", True)
    torch.manual_seed(0)
    cls, ref_cls = (CPUConvTranspose2d, nn.ConvTranspose2d) if transposed else (CPUConv2d, nn.Conv2d)
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


def test_each_shape_takes_its_path(monkeypatch):
    monkeypatch.setattr(cpuconv, "MATMUL", True)
    monkeypatch.setattr(cpuconv, "LAYOUT", True)
    calls = []
    real = torch.nn.functional.unfold
    monkeypatch.setattr(torch.nn.functional, "unfold", lambda *a, **k: calls.append(1) or real(*a, **k))
    conv = CPUConv2d(3, 4, 4, 2, 1)
    conv(torch.randn(1, 3, 4, 4))  # 2x2 output: matmul
    assert calls == [1]
    wide = CPUConv2d(512, 8, 4, 2, 1)
    wide(torch.randn(1, 512, 8, 8))  # 4x4 output of 512 maps: matmul
    assert calls == [1, 1]
    narrow = CPUConv2d(128, 8, 4, 2, 1)
    assert narrow(torch.randn(1, 128, 8, 8)).is_contiguous()  # 4x4 output of 128 maps: oneDNN, NCHW
    assert calls == [1, 1]
    big = conv(torch.randn(1, 3, 32, 32))  # few channels, large image: oneDNN in channels_last
    assert calls == [1, 1] and big.is_contiguous(memory_format=torch.channels_last)
    monkeypatch.setattr(cpuconv, "MATMUL", False)  # switched off (the benchmark's lever rows)
    monkeypatch.setattr(cpuconv, "LAYOUT", False)
    assert conv(torch.randn(1, 3, 32, 32)).is_contiguous() and calls == [1, 1]
