"""Reading images and cropping/resizing them exactly the way the training data was prepared."""

from __future__ import annotations

import re
import struct
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


class ImageRefused(FaderkitError):
    """An image that cannot be decoded. ``kind`` says why, for a server's status code: ``"too-large"``
    (more pixels than allowed: a decompression bomb, refused from its header), ``"unknown"`` (not a
    format faderkit reads), ``"damaged"`` (truncated or corrupt) or ``"empty"`` (no pixels)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


#: What :func:`decode` opens by default; Pillow opens more (EPS runs Ghostscript), none of them photos.
FORMATS = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF")
KNOWN = "give a JPEG, PNG, WebP, TIFF, BMP or GIF image"


def decode(source, name: str, max_pixels: int = MAX_PIXELS, limit: str | None = None) -> Image.Image:
    """An image file (a path or a binary file object) -> RGB as displayed (see :func:`normalise`).

    The one place images from users are decoded: a short list of formats, the pixel count read from
    the header and refused before any pixel is decoded, Pillow's warnings (corrupt EXIF, odd tags)
    kept off the user's terminal, and every failure an :class:`ImageRefused` naming ``name``.
    ``limit``: how to call ``max_pixels`` in a message (default "the limit of N MP")."""
    limit = limit or f"the limit of {max_pixels / 1e6:g} MP"
    bomb = "refused as a possible decompression bomb (or a photo to downscale first)"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=FORMATS) as im:
                pixels = im.width * im.height
                if pixels > max_pixels:
                    raise ImageRefused("too-large", f"{name} declares {im.width}x{im.height} pixels "
                                                    f"({pixels / 1e6:.0f} MP), over {limit}: {bomb}")
                if pixels == 0:
                    raise ImageRefused("empty", f"{name} has no pixels ({im.width}x{im.height})")
                im.load()
                return normalise(im)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow: "Image size (900000000 pixels) exceeds ..."
        size = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "too many pixels"
        raise ImageRefused("too-large", f"{name} declares {size}, over {limit}: {bomb}") from None
    except UnidentifiedImageError:
        raise ImageRefused("unknown", f"{name} is not in an image format faderkit can read; {KNOWN}") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, MemoryError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else " ".join(str(exc).split())
        raise ImageRefused("damaged", f"cannot read image {name}: {reason or type(exc).__name__}; "
                                      "it may be truncated or damaged") from None


def open_image(path: str | Path) -> Image.Image:
    """Open a user's image as RGB (see :func:`decode`); any failure is a one-line FaderkitError."""
    path = Path(path)
    if not path.exists():
        raise FaderkitError(f"image not found: {path}")
    if path.is_dir():
        raise FaderkitError(f"{path} is a folder, not an image")
    if not path.is_file():
        raise FaderkitError(f"{path} is not a regular file (a pipe or a device); give an image file")
    if path.stat().st_size == 0:
        raise ImageRefused("unknown", f"{path} is an empty file; {KNOWN}")
    return decode(path, str(path))


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
