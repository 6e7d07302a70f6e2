"""Reading an uploaded image from bytes, safely: a size limit, then the CLI's own decoder
(:func:`faderkit.imageio.decode`: a pixel limit read from the header before any pixel is decoded,
a short list of formats), and a message a person understands with an HTTP status."""

from __future__ import annotations

import io

from PIL import Image

from ..imageio import ImageRefused, decode

#: The HTTP status of each kind of refused image.
STATUS = {"too-large": 413, "unknown": 415, "damaged": 400, "empty": 400}


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
    """Upload bytes -> an RGB PIL image as displayed, by :func:`faderkit.imageio.decode` (the CLI's
    decoder). Raises UploadError: 400 empty or damaged, 415 not an image in a known format, 413 more
    pixels than ``max_pixels`` (a decompression bomb is refused from its header, before decoding)."""
    if not data:
        raise UploadError(400, f"{name} is empty; choose an image file")
    try:
        return decode(io.BytesIO(data), name, max_pixels, limit=f"this server's limit of {max_pixels / 1e6:g} MP")
    except ImageRefused as exc:
        raise UploadError(STATUS[exc.kind], str(exc)) from None
