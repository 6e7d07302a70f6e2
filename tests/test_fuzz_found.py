"""What the fuzz tests found, each kept as a regular test (README's reliability section lists them)."""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from faderkit import FaderkitError
from faderkit import checkpoint as ckpt
from faderkit.cli import cli
from faderkit.editor import Editor
from faderkit.imageio import open_image
from faderkit.recipe import validate
from faderkit.serve import bind
from faderkit_plugins.oxford102.dataset import read_mat


def tiff_with_an_overlong_tag(tag: int) -> bytes:
    """A TIFF whose ``tag`` entry claims 1,000 values, more than the file holds: Pillow warns
    ("Tag data larger than file") and skips it."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(buf, format="TIFF")
    data = bytearray(buf.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for i in range(struct.unpack("<H", data[ifd:ifd + 2])[0]):
        entry = ifd + 2 + 12 * i
        if struct.unpack("<H", data[entry:entry + 2])[0] == tag:
            data[entry + 4:entry + 8] = struct.pack("<I", 1000)
    return bytes(data)


@pytest.mark.parametrize("tag, readable", [(279, True), (256, False)])
def test_pillows_warnings_about_a_damaged_tiff_stay_off_the_terminal(tmp_path, tag, readable):
    """Found: a mutated TIFF printed Pillow's UserWarning beside the result (or the Error line)."""
    path = tmp_path / "odd.tif"
    path.write_bytes(tiff_with_an_overlong_tag(tag))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if readable:
            assert open_image(path).mode == "RGB"
        else:
            with pytest.raises(FaderkitError, match="odd.tif is not in an image format"):
                open_image(path)
    assert [str(w.message) for w in caught] == []
    result = CliRunner().invoke(cli, ["edit", str(path), "-c", str(tmp_path / "none.safetensors"),
                                                      "-o", str(tmp_path / "o.png")])
    assert "Warning" not in result.output and result.output.startswith("Error: ")


def test_a_float16_weight_is_refused_at_load(trained_run, tmp_path):
    """Found: a checkpoint with one float16 tensor loaded, then every edit failed with a dtype RuntimeError."""
    tensors, meta = ckpt.load(trained_run / "best.safetensors")
    name = next(k for k in sorted(tensors) if k.startswith("model.") and tensors[k].is_floating_point())
    tensors[name] = tensors[name].half()
    ckpt.save(tmp_path / "half.safetensors", tensors, meta)
    with pytest.raises(FaderkitError, match=rf"{name.removeprefix('model.')} is float16, expected float32"):
        Editor.load(tmp_path / "half.safetensors")


def test_a_key_with_a_line_break_keeps_the_message_on_one_line(trained_run):
    """Found: a recipe key holding a newline (in a checkpoint's recipe) made a two-line FaderkitError."""
    recipe = json.loads(json.dumps(ckpt.read_meta(trained_run / "best.safetensors")["recipe"]))
    recipe["classifier"]["params"]["\n"] = 1
    with pytest.raises(FaderkitError) as caught:
        validate(recipe, "embedded")
    assert "\n" not in str(caught.value) and "\\n" in str(caught.value)
    assert str(FaderkitError("a\r\nb")) == "a\\r\\nb"


def test_a_truncated_mat_file_is_one_error_line(tmp_path):
    """Found: the first 20 bytes of a .mat file raised IndexError inside scipy."""
    path = tmp_path / "setid.mat"
    path.write_bytes(b"MATLAB 5.0 MAT-file ")
    with pytest.raises(FaderkitError, match=r"cannot read .*setid\.mat as a MATLAB file"):
        read_mat(path, ["trnid"])


def test_the_console_listens_before_its_url_is_printed():
    """Found by the flood benchmark: the URL was printed before uvicorn listened, and a client that
    connected at once was refused."""
    sock = bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        socket.create_connection(sock.getsockname()[:2], timeout=5).close()
    finally:
        sock.close()


#: A setid.mat mutated by the fuzzer: scipy's loadmat dies on it with a segmentation fault.
CRASHING_MAT = base64.b64decode(
    "TUFUTEFCIDUuMCBNQVQtZmlsZSBQbGF0Zm9ybTogcG9zaXgsIENyZWF0ZWQgb246IFNhdCBEZWMgIDUgMDQ6MDA6MDMgMjAyNgAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABSU0OAAAASAAAAAYAAAAIAAAADgAAAAAA"
    "AAAFAAAACAAAAAEAAAACAAAAAQAAAAUAAAB0cm5pZAAAAAwAAAAQAAAAAQAAAAAAAAACAAAAAAAAAA4AAABAAAAABgAAAAgAAAAO"
    "AAAAAAAAAAUAAAAIAAAAAQAAAAEAAAABAAAABQAAAHZhbGlkAAAADAAAAAgAAAADAAAAAAAAAA4AAABAAAAABgAAAAgAAAAOAAAA"
    "AAAAAAUAAAAIAAAAAQAAAAEAAAABAAAABQAAAHRzdGlkAAgAAAAEAAAAAAAAAA==")


def test_a_mat_file_that_crashes_scipy_is_one_error_line(tmp_path):
    """Found: the .mat above killed the whole process (SIGSEGV in scipy's parser); now parsed in a child."""
    path = tmp_path / "setid.mat"
    path.write_bytes(CRASHING_MAT)
    with pytest.raises(FaderkitError, match=r"cannot read .*setid\.mat as a MATLAB file: its parser crashed"):
        read_mat(path, ["trnid", "valid", "tstid"])


def test_edit_options_that_are_not_an_object_are_a_400(trained_run, toy_root):
    """Found: {"options": true} in an edit request was a 500 (a TypeError in the console)."""
    from starlette.testclient import TestClient

    from faderkit.serve.app import create_app
    from faderkit.serve.console import Console

    console = Console(Editor.load(trained_run / "best.safetensors"))
    client = TestClient(create_app(console), base_url="http://127.0.0.1:8000")
    image = client.post("/api/images", content=(toy_root / "img_align_celeba/000055.jpg").read_bytes(),
                        headers={"Content-Type": "image/jpeg"}).json()["id"]
    for options in (True, 1, "decoded", [1]):
        r = client.post("/api/edit", json={"image": image, "values": {}, "options": options})
        assert r.status_code == 400 and r.json()["error"] == 'options must be an object, e.g. {"mode": "residual"}'
