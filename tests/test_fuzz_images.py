"""Fuzzing image decoding: truncated, bit-flipped and header-mutated PNG/JPEG/WebP/TIFF/GIF/BMP, and
huge declared sizes, through ``open_image`` (the CLI's reader) and ``read_image`` (the console's)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from faderkit.imageio import crop_resize, open_image
from faderkit.serve.uploads import UploadError, read_image

from fuzzing import budget, hang_bound, mutated_bytes, one_line, outcome, snapshot, unchanged


def _saved(fmt: str, mode: str, **kw) -> bytes:
    rng = np.random.default_rng(len(fmt) + len(mode))
    img = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


SEEDS = {
    "png-rgb": _saved("PNG", "RGB"), "png-rgba": _saved("PNG", "RGBA"), "png-p": _saved("PNG", "P"),
    "png-16": _saved("PNG", "I;16"), "jpeg": _saved("JPEG", "RGB", quality=90),
    "jpeg-progressive": _saved("JPEG", "RGB", progressive=True), "jpeg-cmyk": _saved("JPEG", "CMYK"),
    "webp": _saved("WEBP", "RGB"), "webp-lossless": _saved("WEBP", "RGBA", lossless=True),
    "tiff": _saved("TIFF", "RGB"), "tiff-lzw": _saved("TIFF", "RGB", compression="tiff_lzw"),
    "tiff-f": _saved("TIFF", "F"), "gif": _saved("GIF", "P"), "bmp": _saved("BMP", "RGB"),
}


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _declared(fmt: str, width: int, height: int) -> bytes:
    """A small file whose header declares ``width`` x ``height`` pixels (valid checksums)."""
    if fmt == "png":
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")
    if fmt == "gif":
        w, h = min(width, 65535), min(height, 65535)
        return SEEDS["gif"][:6] + struct.pack("<HH", w, h) + SEEDS["gif"][10:]
    if fmt == "bmp":
        data = bytearray(SEEDS["bmp"])
        data[18:26] = struct.pack("<ii", min(width, 2**31 - 1), min(height, 2**31 - 1))
        return bytes(data)
    data = bytearray(SEEDS["jpeg"])  # JPEG: the SOF0 frame header's height and width
    at = data.find(b"\xff\xc0") + 5
    data[at:at + 4] = struct.pack(">HH", min(height, 65535), min(width, 65535))
    return bytes(data)


IMAGES = st.one_of(
    st.sampled_from(sorted(SEEDS)).flatmap(lambda name: mutated_bytes(SEEDS[name])),
    st.builds(_declared, st.sampled_from(["png", "gif", "bmp", "jpeg"]),
              st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1)),
    st.binary(max_size=64),
)


@budget(150)
@given(data=IMAGES)
def test_open_image(tmp_path_factory, data):
    """The CLI's reader: an RGB image the loader can crop, or one FaderkitError line; no other file touched."""
    root = tmp_path_factory.mktemp("img")
    (root / "earlier.png").write_bytes(SEEDS["png-rgb"])
    path = root / "input.img"
    path.write_bytes(data)
    before = snapshot(root)
    img = outcome(open_image, path)
    if isinstance(img, Image.Image):
        assert img.mode == "RGB" and img.width * img.height > 0
        assert outcome(crop_resize, img, 8).shape == (8, 8, 3)
    unchanged(before, snapshot(root))


@budget(150)
@given(data=IMAGES)
def test_read_upload(data):
    """The console's reader: an RGB image, or an UploadError with a 4xx status and one line."""
    with hang_bound():
        try:
            img = read_image(data, max_pixels=25_000_000, name="x.png")
        except UploadError as exc:
            assert 400 <= exc.status < 500
            one_line(str(exc))
        else:
            assert img.mode == "RGB" and img.width * img.height <= 25_000_000
