"""Reading images and cropping/resizing them exactly the way the training data was prepared."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import atomic
from .errors import FaderkitError

#: Refuse images larger than this many pixels (decompression bombs).
MAX_PIXELS = 64_000_000


def crop_box_for(width: int, height: int, native_size=None, crop_box=None) -> tuple[int, int, int, int]:
    """The box to crop from a (width, height) image.

    An image of the dataset's native size gets the dataset's own crop (CelebA: rows 20..198);
    any other image gets its central square, so faces framed like the data stay framed alike.
    """
    if native_size and crop_box and (width, height) == tuple(native_size):
        return tuple(int(v) for v in crop_box)
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def crop_resize(img: Image.Image, size: int, native_size=None, crop_box=None) -> np.ndarray:
    """PIL image -> uint8 (size, size, 3): crop (see :func:`crop_box_for`), then a Lanczos resize."""
    box = crop_box_for(img.width, img.height, native_size, crop_box)
    if img.mode != "RGB":
        img = img.convert("RGB")
    out = img.resize((size, size), Image.LANCZOS, box=box)
    return np.asarray(out, dtype=np.uint8)


def open_image(path: str | Path) -> Image.Image:
    """Open a user's image as RGB with EXIF rotation applied; any failure is a one-line FaderkitError."""
    path = Path(path)
    if not path.exists():
        raise FaderkitError(f"image not found: {path}")
    if path.is_dir():
        raise FaderkitError(f"{path} is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise FaderkitError(f"{path}: {im.width}x{im.height} is too large to edit (limit {MAX_PIXELS} pixels)")
                im.load()
                im = ImageOps.exif_transpose(im)
                if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                    im = im.convert("RGBA")
                    background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                    im = Image.alpha_composite(background, im)
                elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    arr = np.asarray(im, dtype=np.float64)
                    hi = arr.max() if arr.size and arr.max() > 0 else 1.0
                    im = Image.fromarray((arr / hi * 255).round().astype(np.uint8))
                return im.convert("RGB")
    except FaderkitError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FaderkitError(f"{path} is not an image faderkit can read ({type(exc).__name__})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise FaderkitError(f"cannot read image {path}: {exc}") from None
    if im.width < 1 or im.height < 1:
        raise FaderkitError(f"{path} has no pixels")


def to_tensor(arrays: Sequence[np.ndarray] | np.ndarray) -> torch.Tensor:
    """uint8 HWC array(s) -> uint8 (B, 3, H, W)."""
    arr = np.stack(arrays) if isinstance(arrays, (list, tuple)) else arrays
    if arr.ndim == 3:
        arr = arr[None]
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float in [-1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """float in [-1, 1] -> uint8, same shape."""
    return images.detach().add(1.0).mul(127.5).round().clamp_(0, 255).to(torch.uint8)


def save_image(chw_uint8: torch.Tensor, path: str | Path) -> None:
    """Write a uint8 (3, H, W) tensor as PNG/JPEG (by the suffix), atomically."""
    path = Path(path)
    arr = chw_uint8.permute(1, 2, 0).cpu().numpy()
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise FaderkitError(f"cannot write {path}: unknown image suffix '{path.suffix}'; use .png or .jpg")
    if not path.parent.is_dir():
        raise FaderkitError(f"cannot write {path}: folder {path.parent} does not exist")
    atomic.write(path, lambda f: Image.fromarray(arr).save(f, format=fmt))
