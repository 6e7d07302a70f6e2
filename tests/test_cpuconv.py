"""cpuconv's paths compute what torch's convolutions compute (up to rounding), forward and backward; each shape's
fastest path is measured once and remembered."""

import json

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
    """The fixed rules (FADERKIT_CPUCONV=static, and every call without gradients)."""
    monkeypatch.setattr(cpuconv, "TUNE", False)
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


def _paths_agree(module, x, paths):
    """Each path's output and gradients against torch's own kernel (``torch``), in float64."""
    module, x = module.double(), x.double()
    want = None
    for path in ["torch", *paths]:
        xs = x.clone().requires_grad_(True)
        y = module._run(xs, path)
        grads = torch.autograd.grad(y, [xs, *module.parameters()], torch.linspace(-1, 1, y.numel()).view_as(y).double())
        if want is None:
            want = (y, grads)
            continue
        assert y.shape == want[0].shape, path
        for a, b in zip([y, *grads], [want[0], *want[1]]):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{path}: {m}")


@pytest.mark.parametrize("bias", [True, False])
def test_every_measured_path_is_the_same_convolution(bias):
    torch.manual_seed(0)
    conv = CPUConv2d(6, 5, 4, 2, 1, bias=bias)
    assert cpuconv._candidates(conv, 16) == ["nchw", "nhwc", "matmul"]
    _paths_agree(conv, torch.randn(3, 6, 8, 8), cpuconv._candidates(conv, 16))
    up = CPUConvTranspose2d(6, 5, 4, 2, 1, bias=bias)
    assert cpuconv._candidates(up, 16) == ["nchw", "nhwc", "matmul", "subpix"]
    _paths_agree(up, torch.randn(3, 6, 4, 4), cpuconv._candidates(up, 16))
    # a transposed convolution of another shape has no sub-pixel path; a large output no matmul path
    assert cpuconv._candidates(CPUConvTranspose2d(6, 5, 3, 2, 1), 16) == ["nchw", "nhwc", "matmul"]
    assert cpuconv._candidates(up, 32 * 32) == ["nchw", "nhwc", "subpix"]


def test_a_training_call_measures_its_shape_once_and_the_cache_remembers(monkeypatch, tmp_path):
    monkeypatch.setenv("FADERKIT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cpuconv, "TUNE", True)
    monkeypatch.setattr(cpuconv, "MATMUL", True)
    monkeypatch.setattr(cpuconv, "LAYOUT", True)
    monkeypatch.setattr(cpuconv, "_CHOICES", {})
    monkeypatch.setattr(cpuconv, "_LOADED", set())
    real, measured = cpuconv.measure, []

    def spy(m, x, paths, repeats=3):
        best, times = real(m, x, paths, repeats=1)
        assert set(times) == set(paths) and all(t > 0 for t in times.values())
        measured.append(paths)
        return "subpix", times  # as if the sub-pixel path had won

    monkeypatch.setattr(cpuconv, "measure", spy)
    torch.manual_seed(0)
    up = CPUConvTranspose2d(6, 5, 4, 2, 1)
    x = torch.randn(2, 6, 8, 8)
    with torch.no_grad():
        up(x)  # no gradients (eval, edit): the fixed rules, nothing measured
    assert measured == []
    calls = []
    monkeypatch.setattr(up, "_run", lambda xx, path, output_size=None: calls.append(path) or
                        CPUConvTranspose2d._run(up, xx, path, output_size))
    y = up(x)
    assert measured == [["nchw", "nhwc", "matmul", "subpix"]] and calls[-1] == "subpix"
    # measuring left no gradient behind, and the call's own graph still works
    assert up.weight.grad is None
    y.sum().backward()
    assert up.weight.grad is not None
    up(x)  # the same shape again: remembered
    assert len(measured) == 1 and calls[-1] == "subpix"
    stored = json.loads((tmp_path / "cpuconv.json").read_text())
    assert list(next(iter(stored.values())).values()) == ["subpix"]
    # a new process (the in-memory choices forgotten) reads the file instead of measuring
    monkeypatch.setattr(cpuconv, "_CHOICES", {})
    monkeypatch.setattr(cpuconv, "_LOADED", set())
    up(x)
    assert len(measured) == 1 and calls[-1] == "subpix"
    # another shape, or another precision, is measured anew
    with torch.autocast("cpu", dtype=torch.bfloat16):
        up(x)
    assert len(measured) == 2
    stored = json.loads((tmp_path / "cpuconv.json").read_text())  # the new shape joins the first, in one object
    assert len(stored) == 1 and list(next(iter(stored.values())).values()) == ["subpix", "subpix"]
    # an unreadable cache file is measured again, not an error
    (tmp_path / "cpuconv.json").write_text("{not json")
    monkeypatch.setattr(cpuconv, "_CHOICES", {})
    monkeypatch.setattr(cpuconv, "_LOADED", set())
    up(x)
    assert len(measured) == 3


def test_a_channels_last_input_is_measured_apart_and_an_nchw_key_is_unchanged():
    conv = CPUConv2d(6, 5, 4, 2, 1)
    x = torch.randn(2, 6, 16, 16)
    plain, nhwc = cpuconv._key(conv, x), cpuconv._key(conv, x.contiguous(memory_format=torch.channels_last))
    assert plain.endswith("|autocast off")  # the keys cached before stop 39 stay valid
    assert nhwc == plain + "|nhwc-in"
    one_pixel = torch.randn(2, 6, 1, 1).contiguous(memory_format=torch.channels_last)  # both layouts at once
    assert not cpuconv._key(conv, one_pixel).endswith("nhwc-in")


def test_static_mode_measures_nothing(monkeypatch):
    monkeypatch.setattr(cpuconv, "TUNE", False)
    monkeypatch.setattr(cpuconv, "MATMUL", True)
    monkeypatch.setattr(cpuconv, "LAYOUT", True)
    monkeypatch.setattr(cpuconv, "measure", lambda *a, **k: pytest.fail("measured in static mode"))
    conv = CPUConv2d(3, 4, 4, 2, 1)
    conv(torch.randn(1, 3, 32, 32)).sum().backward()
