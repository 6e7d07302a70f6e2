"""The three MTCNN networks (Zhang et al., "Joint Face Detection and Alignment using Multi-task
Cascaded Convolutional Networks", 2016) in torch, with the weights the ``mtcnn`` package ships.

The ``mtcnn`` wheel (MIT licence) carries the original networks' weights converted for its
TensorFlow layers: ``mtcnn/assets/weights/{p,r,o}net.lz4``, each an lz4-compressed joblib list of
arrays in Keras order (conv kernels HWIO, PReLU slopes, dense kernels (in, out)). Its own code needs
TensorFlow; only these files are read here, without importing the package.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from faderkit.errors import FaderkitError

INSTALL = "pip install 'faderkit[faces]'"


def _conv(cin: int, cout: int, k: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k), nn.PReLU(cout)]


class PNet(nn.Module):
    """Proposal network, fully convolutional: 12x12 windows, stride 2 -> face probability and box offsets."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 10, 3), nn.MaxPool2d(2, 2, ceil_mode=True), *_conv(10, 16, 3),
                                  *_conv(16, 32, 3))
        self.box, self.cls = nn.Conv2d(32, 4, 1), nn.Conv2d(32, 2, 1)

    def forward(self, x):
        h = self.body(x)
        return self.cls(h).softmax(1)[:, 1], self.box(h)


class _Head(nn.Module):
    """Conv body, then the Keras model's (W, H, C) flatten, a dense layer and the output heads."""

    def forward(self, x):
        h = self.body(x).permute(0, 3, 2, 1).flatten(1)
        h = self.act(self.fc(h))
        outs = [self.cls(h).softmax(1)[:, 1], self.box(h)]
        return outs + [self.marks(h)] if hasattr(self, "marks") else outs


class RNet(_Head):
    """Refinement network on 24x24 patches: face probability and box offsets."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 28, 3), nn.MaxPool2d(3, 2, ceil_mode=True), *_conv(28, 48, 3),
                                  nn.MaxPool2d(3, 2), *_conv(48, 64, 2))
        self.fc, self.act = nn.Linear(576, 128), nn.PReLU(128)
        self.box, self.cls = nn.Linear(128, 4), nn.Linear(128, 2)


class ONet(_Head):
    """Output network on 48x48 patches: probability, box offsets and five landmarks (x1..x5, y1..y5)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(*_conv(3, 32, 3), nn.MaxPool2d(3, 2, ceil_mode=True), *_conv(32, 64, 3),
                                  nn.MaxPool2d(3, 2), *_conv(64, 64, 3), nn.MaxPool2d(2, 2, ceil_mode=True),
                                  *_conv(64, 128, 2))
        self.fc, self.act = nn.Linear(1152, 256), nn.PReLU(256)
        self.box, self.marks, self.cls = nn.Linear(256, 4), nn.Linear(256, 10), nn.Linear(256, 2)


def weights_dir() -> Path:
    """The folder of the ``mtcnn`` package's weights, found without importing it (its code needs TensorFlow)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise FaderkitError(f"the mtcnn face locator needs its weights: {INSTALL} (or pass --no-align for an image "
                            "that is already a face crop)")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def _read_arrays(path: Path) -> list[np.ndarray]:
    try:
        import joblib
    except ImportError:
        raise FaderkitError(f"the mtcnn face locator needs joblib and lz4 to read its weights: {INSTALL}") from None
    try:
        arrays = joblib.load(path)
    except Exception as exc:  # missing lz4, a damaged or foreign file
        raise FaderkitError(f"cannot read the MTCNN weights {path} ({type(exc).__name__}: {exc}); "
                            f"reinstall them: {INSTALL}") from None
    if not isinstance(arrays, list) or not all(isinstance(a, np.ndarray) for a in arrays):
        raise FaderkitError(f"{path} is not the list of arrays the mtcnn 1.x package ships; {INSTALL}")
    return arrays


def _assign(net: nn.Module, arrays: list[np.ndarray], path: Path) -> nn.Module:
    """Keras order -> torch modules, in the order the layers appear in the Keras model."""
    layers = [m for m in net.body if isinstance(m, (nn.Conv2d, nn.PReLU))]
    if isinstance(net, PNet):
        layers += [net.box, net.cls]
    else:
        layers += [net.fc, net.act, net.box] + ([net.marks] if isinstance(net, ONet) else []) + [net.cls]
    it = iter(arrays)
    try:
        with torch.no_grad():
            for layer in layers:
                if isinstance(layer, nn.Conv2d):
                    _copy(layer.weight, next(it).transpose(3, 2, 0, 1))  # HWIO -> OIHW
                    _copy(layer.bias, next(it))
                elif isinstance(layer, nn.PReLU):
                    _copy(layer.weight, next(it).reshape(-1))
                else:
                    _copy(layer.weight, next(it).T)
                    _copy(layer.bias, next(it))
        if next(it, None) is not None:
            raise ValueError("more arrays than layers")
    except (StopIteration, ValueError) as exc:
        raise FaderkitError(f"{path} does not fit MTCNN's {type(net).__name__} ({exc or 'too few arrays'}); "
                            f"it needs the mtcnn 1.x package: {INSTALL}") from None
    return net.eval()


def _copy(param: torch.Tensor, arr: np.ndarray) -> None:
    if tuple(param.shape) != arr.shape:
        raise ValueError(f"an array of shape {arr.shape} where {tuple(param.shape)} belongs")
    param.copy_(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))


@lru_cache(maxsize=1)
def load_networks() -> tuple[PNet, RNet, ONet]:
    """The three networks with the shipped weights (read once per process)."""
    folder = weights_dir()
    nets = []
    for net, name in ((PNet(), "pnet"), (RNet(), "rnet"), (ONet(), "onet")):
        path = folder / f"{name}.lz4"
        if not path.is_file():
            raise FaderkitError(f"the mtcnn package at {folder.parent.parent} has no {path.name}; {INSTALL}")
        nets.append(_assign(net, _read_arrays(path), path))
    return tuple(nets)  # type: ignore[return-value]
