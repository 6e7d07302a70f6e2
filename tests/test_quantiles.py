"""faderkit/quantiles.py gives torch.quantile's values and gradients, computed along contiguous memory."""

import pytest
import torch

from faderkit.quantiles import column_quantiles, row_quantiles, sorted_columns

Q = [0.25, 0.5, 0.75]


@pytest.mark.parametrize("n", [2, 4, 5, 16, 33])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_column_quantiles_are_torch_quantile(n, dtype):
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 257, generator=g, dtype=dtype)
    x[:, 3] = 1.5  # a tied column
    x.requires_grad_(True)
    want = torch.quantile(x, torch.tensor(Q, dtype=dtype), dim=0)
    got = column_quantiles(x, Q)
    assert got.shape == (3, 257) and torch.equal(got, want)
    w = torch.randn(3, 257, generator=g, dtype=dtype)
    (gw,) = torch.autograd.grad((want * w).sum(), x)
    (gg,) = torch.autograd.grad((got * w).sum(), x)
    torch.testing.assert_close(gg, gw, rtol=0, atol=1e-12)


def test_sorted_columns_and_row_quantiles():
    x = torch.tensor([[3.0, 0.0], [1.0, 10.0], [2.0, 20.0], [0.0, 30.0], [4.0, 40.0]])
    v, order = sorted_columns(x)
    assert v.is_contiguous() and v.tolist() == [[0, 1, 2, 3, 4], [0, 10, 20, 30, 40]]
    assert order[0].tolist() == [3, 1, 2, 0, 4]
    assert row_quantiles(v, [0.0, 0.5, 0.6, 1.0]).tolist() == [[0, 2, 2.4000000953674316, 4], [0, 20, 24, 40]]
