"""Image-quality measures on [0, 1] images (B, C, H, W): MSE, PSNR and the standard SSIM.

Each returns one value per image, so callers can average over a split and count what they averaged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: PSNR of identical images would be infinite; an MSE below this floor reads as this many dB.
MSE_FLOOR = 1e-10


def mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image."""
    return (x.float() - y.float()).pow(2).flatten(1).mean(1)


def l1(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean absolute error per image."""
    return (x.float() - y.float()).abs().flatten(1).mean(1)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB, peak 1: ``10 log10(1 / MSE)`` (capped at 100 dB)."""
    return -10.0 * torch.log10(mse(x, y).clamp_min(MSE_FLOOR))


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """The normalised 1-D Gaussian of Wang et al. (2004): 11 taps, sigma 1.5."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> torch.Tensor:
    """Structural similarity per image (Wang et al. 2004), data range 1.

    Local statistics under an 11x11 Gaussian window (sigma 1.5), computed only where the window
    fits inside the image ("valid", as in the reference MATLAB code); C1 = (0.01)^2, C2 = (0.03)^2.
    The SSIM map is averaged over positions, then over channels.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"ssim needs two (B, C, H, W) tensors of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if min(x.shape[-2:]) < window:
        raise ValueError(f"ssim needs images of at least {window}x{window} pixels, got {tuple(x.shape[-2:])}")
    x, y = x.double(), y.double()
    c = x.shape[1]
    g = gaussian_window(window, sigma).to(x.device)
    gh = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gv = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:  # separable Gaussian, one channel at a time
        return F.conv2d(F.conv2d(t, gh, groups=c), gv, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    c1, c2 = k1**2, k2**2
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return ssim_map.mean((2, 3)).mean(1).float()


def pearson(a, b) -> float | None:
    """Pearson correlation of two equal-length sequences; None when either is constant."""
    a = torch.as_tensor(a, dtype=torch.float64).flatten()
    b = torch.as_tensor(b, dtype=torch.float64).flatten()
    if a.numel() < 2:
        return None
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum()) / den if den > 0 else None
