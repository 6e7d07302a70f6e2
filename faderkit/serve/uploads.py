"""Reading an uploaded image from bytes, safely: a size limit, a pixel limit read from the header
before any pixel is decoded, a short list of formats, and a message a person understands."""

from __future__ import annotations

import io
import re
import warnings

from PIL import Image, UnidentifiedImageError

from ..imageio import normalise

#: Formats a browser user would upload. Pillow opens more (EPS runs Ghostscript, for one), and a
#: server has no reason to parse them.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")


class UploadError(Exception):
    """A refused upload: ``status`` is the HTTP status, the message is shown in the page as it is."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def too_large(size: int | None, limit: int) -> UploadError:
    """413 for a body over ``limit`` bytes (``size`` None: not known, the upload was cut off at the limit)."""
    what = "the file is over" if size is None else f"the file is {size / 2**20:.1f} MB, over"
    return UploadError(413, f"{what} this server's limit of {limit / 2**20:g} MB; choose a smaller image "
                            "(or restart faderkit serve with a larger --max-upload-mb)")


def read_image(data: bytes, max_pixels: int, name: str = "the file") -> Image.Image:
    """Upload bytes -> an RGB PIL image as displayed (see :func:`faderkit.imageio.normalise`).

    Raises UploadError: 400 empty or damaged, 415 not an image in a known format, 413 more pixels
    than ``max_pixels`` (a decompression bomb is refused from its header, before decoding)."""
    if not data:
        raise UploadError(400, f"{name} is empty; choose an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                pixels = im.width * im.height
                if pixels > max_pixels:
                    raise UploadError(413, f"{name} declares {im.width}x{im.height} pixels ({pixels / 1e6:.0f} MP), over "
                                           f"this server's limit of {max_pixels / 1e6:g} MP: refused (a decompression "
                                           "bomb, or a photo to downscale first)")
                if pixels == 0:
                    raise UploadError(400, f"{name} has no pixels ({im.width}x{im.height})")
                im.load()
                return normalise(im)
    except UploadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))  # Pillow: "Image size (900000000 pixels) exceeds ..."
        size = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "too many pixels"
        raise UploadError(413, f"{name} declares {size}, over this server's limit of {max_pixels / 1e6:g} MP: "
                               "refused as a possible decompression bomb") from None
    except UnidentifiedImageError:
        raise UploadError(415, f"{name} is not an image faderkit can read; choose a "
                               f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]} file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UploadError(400, f"{name} could not be read as an image ({reason}); it may be truncated or damaged") from None
