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


def normalise(im: Image.Image) -> Image.Image:
    """Any PIL image -> RGB as displayed: EXIF rotation applied, transparency composited on white,
    16-bit and float pixels scaled to 8 bits (see :func:`_to_8bit`), the first frame of an animation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # e.g. "Corrupt EXIF data": the pixels are fine
        im = ImageOps.exif_transpose(im)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, im)
    elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        im = Image.fromarray(_to_8bit(np.asarray(im), im.mode))
    return im.convert("RGB")


def open_image(path: str | Path) -> Image.Image:
    """Open a user's image as RGB (see :func:`normalise`); any failure is a one-line FaderkitError."""
    path = Path(path)
    if not path.exists():
        raise FaderkitError(f"image not found: {path}")
    if path.is_dir():
        raise FaderkitError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise FaderkitError(f"{path} is not a regular file (a pipe or a device); give an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise FaderkitError(f"{path} declares {im.width}x{im.height} pixels, over the limit of "
                                        f"{MAX_PIXELS:,}: refused as a possible decompression bomb")
                im.load()
                return normalise(im)
    except FaderkitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        size = str(exc).split("(")[1].split(")")[0] if "(" in str(exc) else "too many pixels"
        raise FaderkitError(f"{path} declares {size}, over the limit of {MAX_PIXELS:,} pixels: "
                            "refused as a possible decompression bomb") from None
    except UnidentifiedImageError:
        kind = "an empty file" if path.stat().st_size == 0 else "not in an image format faderkit can read"
        raise FaderkitError(f"{path} is {kind}; give a JPEG, PNG, WebP, TIFF, BMP or GIF image") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
        raise FaderkitError(f"cannot read image {path}: {reason}") from None


def _to_8bit(arr: np.ndarray, mode: str) -> np.ndarray:
    """One-channel 16/32-bit or float pixels -> uint8: 16-bit by its full range (v / 257), floats in
    [0, 1] by 255, anything wider by its own maximum."""
    arr = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    top = float(arr.max()) if arr.size else 0.0
    if mode == "F" and top <= 1.0:
        scale = 255.0
    elif mode.startswith("I;16") or top <= 65535:
        scale = 1 / 257
    else:
        scale = 255.0 / top
    return np.clip(np.round(arr * scale), 0, 255).astype(np.uint8)


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
    if fmt is None or fmt not in Image.SAVE:
        raise FaderkitError(f"cannot write {path}: {'unknown image suffix' if fmt is None else 'Pillow cannot write'} "
                            f"'{path.suffix}'; use .png or .jpg")
    if not path.parent.is_dir():
        raise FaderkitError(f"cannot write {path}: folder {path.parent} does not exist")
    atomic.write(path, lambda f: Image.fromarray(arr).save(f, format=fmt))
