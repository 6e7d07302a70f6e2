"""Fuzzing the console's HTTP API in process: methods, paths and ids, content types, bodies (random,
mutated JSON edits, mutated images), JSON fields and headers. Every answer must be below 500 with a
one-line message when it is an error, and the image held before must still be served as it was."""

from __future__ import annotations

import io
import json
from urllib.parse import quote

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import faderkit
from faderkit.serve.app import create_app
from faderkit.serve.console import Console

from fuzzing import ODD_VALUES, budget, hang_bound, mutated_bytes, one_line

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'faderkit[serve]'")
from starlette.testclient import TestClient  # noqa: E402

FACE = "img_align_celeba/000055.jpg"


class Served:
    """A console with one image held, and an in-process client (a plain object: Hypothesis prints it)."""

    def __init__(self, editor, face: bytes):
        self.console = Console(editor, max_upload_bytes=200_000, max_pixels=4_000_000, max_images=10_000,
                               max_held_bytes=2**30)
        self.client = TestClient(create_app(self.console), base_url="http://127.0.0.1:8000",
                                 raise_server_exceptions=False)
        self.face = face
        r = self.client.post("/api/images", content=face, headers={"Content-Type": "image/jpeg"})
        self.image = r.json()["id"]
        self.photo = self.client.get(f"/api/images/{self.image}/photo.png").content

    def __repr__(self):
        return "Served(console)"


@pytest.fixture(scope="module")
def served(trained_run, toy_root):
    return Served(faderkit.load(trained_run / "best.safetensors"), (toy_root / FACE).read_bytes())


def _png(side=12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=10)
                       | st.sampled_from(ODD_VALUES),
                       lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=10), kids, max_size=3),
                       max_leaves=10)
IDS = st.one_of(st.text(max_size=30), st.sampled_from(["..", "%2e%2e", "../../etc/passwd", "0", "-1", "a" * 400,
                                                       "%00", "%ff", "?", "#"]))


@st.composite
def edit_body(draw, image: str) -> bytes:
    body = {"image": draw(st.just(image) | IDS | JSONISH),
            "values": draw(st.dictionaries(st.sampled_from(["Smiling", "Eyeglasses", "Male", ""]) | st.text(max_size=8),
                                           JSONISH | st.floats(-20, 20), max_size=3) | JSONISH),
            "options": draw(st.none() | st.fixed_dictionaries({"mode": st.sampled_from(["local", "residual", "clean", "decoded"]) | JSONISH,
                                                                "align": st.sampled_from(["aligned", "crop"]) | JSONISH})
                            | JSONISH)}
    for key in draw(st.lists(st.sampled_from(sorted(body)), max_size=2)):
        body.pop(key, None)
    text = json.dumps(body, allow_nan=True).encode()
    return draw(st.just(text) | mutated_bytes(text, max_ops=2))


@st.composite
def requests(draw, served):
    kind = draw(st.sampled_from(["edit", "upload", "get", "pick", "any"]))
    headers = {}
    if draw(st.booleans()):
        headers["Content-Type"] = draw(st.sampled_from(["image/png", "image/jpeg", "application/json", "text/plain",
                                                        "application/octet-stream", "multipart/form-data", ""])
                                       | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20))
    if draw(st.booleans()):
        headers["X-Filename"] = draw(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
    if kind == "edit":
        return "POST", "/api/edit", draw(edit_body(served.image)), headers
    if kind == "upload":
        headers.setdefault("Content-Type", "image/png")
        body = draw(st.sampled_from([_png(), served.face, b""]).flatmap(lambda b: st.just(b) | mutated_bytes(b)))
        return "POST", "/api/images", body, headers
    ident = quote(draw(st.just(served.image) | IDS), safe="%")  # "%00", "%2e%2e" travel as written
    if kind == "get":
        path = draw(st.sampled_from([f"/api/images/{ident}/input.png", f"/api/images/{ident}/photo.png",
                                     f"/api/images/{ident}/input.png?align={ident}", "/api/test-images?offset=" + ident,
                                     f"/api/test-images/{ident}.png", "/api/model", f"/static/{ident}"]))
        return "GET", path, b"", headers
    if kind == "pick":
        return "POST", f"/api/test-images/{draw(st.integers(-5, 2**40))}", b"", headers
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]))
    path = draw(st.sampled_from(["/", "/api/edit", "/api/images", "/api/model", f"/api/{ident}", f"/{ident}"]))
    return method, path, draw(st.binary(max_size=64)), headers


@budget(80)
@given(data=st.data())
def test_api(served, data):
    method, path, body, headers = data.draw(requests(served))
    with hang_bound():
        r = served.client.request(method, path, content=body, headers=headers)
    assert r.status_code < 500, (r.status_code, r.text[:300])
    if r.status_code >= 400:
        assert r.text.strip(), "an error without a message"
        message = r.json()["error"] if r.headers.get("content-type", "").startswith("application/json") else r.text
        one_line(message)
    # the image held before is still served, unchanged
    assert served.client.get(f"/api/images/{served.image}/photo.png").content == served.photo
