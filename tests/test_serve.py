"""`faderkit serve` over HTTP (a real server on a free localhost port, no browser): the API the page
is a thin client of.

The page itself, in a real Chromium, is tested in test_serve_browser.py.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import struct
import zlib
from contextlib import contextmanager
from urllib.parse import urlsplit

import numpy as np
import pytest
import torch
from PIL import Image

import faderkit
from faderkit import FaderkitError
from faderkit.recipe import validate
from faderkit.serve import Running, bind, is_loopback, url_of
from faderkit.serve.console import Console, parse_fader_range
from faderkit.serve.testimages import TestImages

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'faderkit[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'faderkit[serve]'")

FACE = "img_align_celeba/000055.jpg"  # a test-split toy face


class Reply:
    def __init__(self, status: int, headers: dict, content: bytes):
        self.status_code, self.headers, self.content = status, headers, content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class Client:
    """Plain HTTP/1.1 requests to a running console (the standard library's http.client)."""

    def __init__(self, url: str):
        self.netloc = urlsplit(url).netloc

    def request(self, method: str, path: str, content: bytes | None = None, headers=None, json_body=None) -> Reply:
        headers = dict(headers or {})
        if json_body is not None:
            content, headers["Content-Type"] = json.dumps(json_body).encode(), "application/json"
        conn = http.client.HTTPConnection(self.netloc, timeout=120)
        try:
            conn.request(method, path, body=content, headers=headers)
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def get(self, path, headers=None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path, content=None, headers=None, json=None) -> Reply:
        return self.request("POST", path, content, headers, json)


@contextmanager
def served(console):
    """A Client of ``console`` served on a free localhost port, for the ``with`` block."""
    with Running(console, log=lambda m: None) as running:
        yield Client(running.url)


def png_of(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def bomb_png(side: int) -> bytes:
    """A PNG whose header declares side x side pixels (the pixel data is never reached)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def editor(trained_run):
    return faderkit.load(trained_run / "best.safetensors")


@pytest.fixture
def console(editor):
    return Console(editor, name="best.safetensors", max_upload_bytes=200_000, max_pixels=4_000_000, max_images=3)


@pytest.fixture
def client(console):
    with served(console) as c:
        yield c


def upload(client, data: bytes, kind: str = "image/jpeg", name: str = "face.jpg"):
    return client.post("/api/images", content=data, headers={"Content-Type": kind, "X-Filename": name})


def test_the_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "<title>faderkit console</title>" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing loaded from elsewhere
    for name, kind in (("console.js", "text/javascript"), ("console.css", "text/css"), ("favicon.svg", "image/svg")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind) and len(r.content) > 100
    assert client.get("/static/../../etc/passwd").status_code == 404
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"


def test_the_model_description_lists_every_fader(client, editor):
    info = client.get("/api/model").json()
    assert [a["name"] for a in info["attributes"]] == ["Smiling", "Eyeglasses"]
    assert all(a["binary"] and a["values"] == ["0", "1"] for a in info["attributes"])
    assert info["range"] == [-1.0, 2.0] and info["image_size"] == 32 and info["has_classifier"]
    # the output mode and (the toy faces declare a landmark template) the alignment, edit's defaults first
    mode, align = info["options"]
    assert mode["name"] == "mode" and mode["choices"] == ["local", "residual", "clean", "decoded"] and set(mode["notes"]) == set(mode["choices"])
    assert align["name"] == "align" and align["choices"] == ["aligned", "crop"] and set(align["notes"]) == set(align["choices"])
    assert info["limits"] == {"max_upload_bytes": 200_000, "max_pixels": 4_000_000, "max_side": 1024}


def test_an_upload_starts_the_faders_at_the_classifiers_soft_values(client, editor, toy_root):
    face = toy_root / FACE
    r = upload(client, face.read_bytes())
    assert r.status_code == 201, r.text
    held = r.json()
    x = editor.prepare(face)
    soft = editor.soft_values(x)[0]
    assert held["inferred"] == pytest.approx(soft) and held["name"] == "face.jpg"
    assert held["values"] == {k: round(v, 2) for k, v in soft.items()}
    assert all(0 <= v <= 1 for v in soft.values())
    # the probability of "present" agrees with the classifier's hard decision
    hard = editor.infer(faderkit.imageio.to_unit(x))[0].tolist()
    assert [int(v > 0.5) for v in soft.values()] == hard
    # the original shown is the image as the model sees it, pixel for pixel
    shown = client.get(f"/api/images/{held['id']}/input.png")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    assert np.array_equal(png_of(shown.content), x[0].permute(1, 2, 0).numpy())
    # and the photo a residual edit changes, as it was uploaded (smaller than --max-side)
    photo = np.asarray(editor.open(face))
    assert held["size"] == [photo.shape[1], photo.shape[0]]
    assert np.array_equal(png_of(client.get(f"/api/images/{held['id']}/photo.png").content), photo)


@pytest.mark.parametrize("mode", [None, "local", "residual", "clean", "decoded"])
def test_an_edit_is_the_librarys_edit_pixel_for_pixel(client, editor, toy_root, mode):
    face = toy_root / FACE
    held = upload(client, face.read_bytes()).json()
    outs = {}
    for smiling in (0.0, 2.0):
        values = {**held["values"], "Smiling": smiling}
        body = {"image": held["id"], "values": values} | ({"options": {"mode": mode}} if mode else {})
        r = client.post("/api/edit", json=body)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
        assert re.fullmatch(r"queue;dur=[\d.]+, model;dur=[\d.]+, png;dur=[\d.]+", r.headers["server-timing"])
        outs[smiling] = png_of(r.content)
        assert np.array_equal(outs[smiling], np.asarray(editor.edit(face, mode=mode, **values)))
    assert not np.array_equal(outs[0.0], outs[2.0])  # the fader does something
    photo = np.asarray(editor.open(face))
    assert outs[0.0].shape == (photo.shape if mode != "decoded" else (editor.image_size, editor.image_size, 3))


def test_a_large_photo_is_held_downscaled_and_edited_as_held(editor):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 500, 3), dtype=np.uint8))
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    with served(Console(editor, max_side=200)) as c:
        held = upload(c, buf.getvalue(), "image/png", "big.png").json()
        assert held["size"] == [200, 120]
        photo = png_of(c.get(f"/api/images/{held['id']}/photo.png").content)
        assert photo.shape == (120, 200, 3)
        assert np.array_equal(photo, np.asarray(big.resize((200, 120), Image.LANCZOS)))
        r = c.post("/api/edit", json={"image": held["id"], "values": {"Smiling": 1.5}})
        assert np.array_equal(png_of(r.content), np.asarray(editor.edit(Image.fromarray(photo), align=False, Smiling=1.5)))


def two_faces_photo() -> np.ndarray:
    """A 640 x 360 photo holding two toy faces, turned and scaled (the toy locator finds both)."""
    from faderkit_plugins.toyfaces.generate import identity_and_attributes
    from faderkit_plugins.toyfaces.render import render
    from faderkit_plugins.toyfaces.scene import backdrop, place

    photo = backdrop(640, 360, seed=3)
    for number, angle, scale, centre in ((4, 12, 1.2, (170, 185)), (9, -8, 1.0, (470, 175))):
        identity, own = identity_and_attributes(0, number)
        photo, _ = place(render(identity, own), photo, angle, scale, centre)
    return photo


def test_faces_in_a_photo_are_aligned_and_edited_like_edit_all_faces(client, editor):
    """A photo that is not one of the data's crops: every face found is aligned like the training data,
    edited and put back (``edit(photo, all_faces=True)``, with the faders that left their start);
    ``align: crop`` is ``edit(photo, align=False)``; the decoded mode shows face 1. The faders start
    where the classifier places face 1."""
    buf = io.BytesIO()
    Image.fromarray(two_faces_photo()).save(buf, format="JPEG", quality=92)
    held = upload(client, buf.getvalue(), "image/jpeg", "two.jpg").json()
    assert held["faces"] == 2 and held["note"].startswith("2 faces found, aligned like the training data")
    photo = Image.fromarray(png_of(client.get(f"/api/images/{held['id']}/photo.png").content))  # as held
    assert held["inferred"] == pytest.approx(editor.soft_values(editor.prepare(photo, face=1))[0])
    shown = png_of(client.get(f"/api/images/{held['id']}/input.png").content)
    assert np.array_equal(shown, editor.prepare(photo, face=1)[0].permute(1, 2, 0).numpy())
    crop = png_of(client.get(f"/api/images/{held['id']}/input.png?align=crop").content)
    assert np.array_equal(crop, editor.prepare(photo, align=False)[0].permute(1, 2, 0).numpy())
    assert client.get(f"/api/images/{held['id']}/input.png?align=sideways").status_code == 400

    def edit(values, **options):
        r = client.post("/api/edit", json={"image": held["id"], "values": values, "options": options})
        assert r.status_code == 200, r.text
        return png_of(r.content)
    # the faders where they start (face 1's values): every face keeps its own, the photo is unchanged
    assert np.array_equal(edit(held["values"]), np.asarray(photo))
    # one fader moved: that attribute is set on both faces, the others keep each face's own
    values = {**held["values"], "Smiling": 2.0}
    both = edit(values)
    assert np.array_equal(both, np.asarray(editor.edit(photo, all_faces=True, Smiling=2.0)))
    assert not np.array_equal(both, np.asarray(photo))
    assert np.array_equal(edit(values, mode="local", align="aligned"), both)
    # one image in view (the crop, or face 1 decoded): every fader's value, as for any single image
    assert np.array_equal(edit(values, align="crop"), np.asarray(editor.edit(photo, align=False, **values)))
    assert np.array_equal(edit(values, mode="decoded"), np.asarray(editor.edit(photo, mode="decoded", face=1, **values)))
    r = client.post("/api/edit", json={"image": held["id"], "values": values, "options": {"align": "sideways"}})
    assert r.status_code == 400 and r.json()["error"] == "align='sideways': choose one of aligned, crop"


def test_a_photo_without_a_face_is_edited_by_its_crop_and_says_so(client, editor):
    noise = np.random.default_rng(5).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    held = upload(client, buf.getvalue(), "image/png", "noise.png").json()
    assert held["faces"] == 0 and held["note"] == ("No face found in the image by the 'toyfaces' face locator: the loader's crop is "
                                                   "edited instead.")
    r = client.post("/api/edit", json={"image": held["id"], "values": {"Smiling": 1.5}})
    assert np.array_equal(png_of(r.content), np.asarray(editor.edit(Image.fromarray(noise), align=False, Smiling=1.5)))


def test_bad_uploads_get_a_clear_message_and_a_4xx_and_the_server_keeps_serving(client, toy_root):
    face = (toy_root / FACE).read_bytes()
    cases = [
        (b"just some notes\n", "text/plain", 415, "Content-Type image/"),
        (b"just some notes\n", "image/jpeg", 415, "notes.txt is not in an image format faderkit can read"),
        (face[:400], "image/jpeg", 400, "truncated or damaged"),
        (b"", "image/png", 400, "is empty"),
        (bomb_png(30000), "image/png", 413, "declares 900 MP, over this server's limit of 4 MP"),
        (bomb_png(3000), "image/png", 413, "3000x3000 pixels (9 MP), over this server's limit of 4 MP"),
        (b"\0" * 300_000, "image/png", 413, "over this server's limit of 0.190735 MB"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "image/x-eps", 415, "not in an image format"),  # never Ghostscript
    ]
    for data, kind, status, message in cases:
        r = upload(client, data, kind, name="notes.txt")
        assert r.status_code == status, (message, r.status_code, r.text)
        assert message in r.json()["error"], r.json()
        assert "\n" not in r.json()["error"] and "Traceback" not in r.text
        assert upload(client, face).status_code == 201  # still serving


def test_bad_edit_requests_are_4xx_with_the_librarys_message(client, toy_root):
    held = upload(client, (toy_root / FACE).read_bytes()).json()
    image = held["id"]
    cases = [
        ({"image": image, "values": {"Smilng": 1}}, 400, "unknown attribute 'Smilng'; this model has: Smiling, Eyeglasses"),
        ({"image": image, "values": {"Smiling": "lots"}}, 400, "expected a number"),
        ({"image": image, "values": {"Smiling": 5}}, 400, "this console's faders go from -1 to 2"),
        ({"image": image, "values": {"Smiling": True}}, 400, "values must map attribute names"),
        ({"image": image, "values": [1, 2]}, 400, "values must map attribute names"),
        ({"image": image, "values": {}, "options": {"output": "residual"}}, 400, "unknown option 'output'; offered: mode"),
        ({"image": image, "values": {}, "options": {"mode": "blend"}}, 400, "mode='blend': choose one of local, residual, clean, decoded"),
        ({"image": "no-such-id", "values": {}}, 404, "no longer holds that image"),
        ({"values": {}}, 400, "expected a JSON body"),
    ]
    for body, status, message in cases:
        r = client.post("/api/edit", json=body)
        assert r.status_code == status and message in r.json()["error"], (body, r.status_code, r.text)
    r = client.post("/api/edit", content=b'{"image": "x", "values": {"Smiling": NaN}}'.replace(b"x", image.encode()),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "finite number" in r.json()["error"]
    r = client.post("/api/edit", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "expected a JSON body" in r.json()["error"]
    assert client.post("/api/edit", json={"image": image, "values": held["values"]}).status_code == 200


def test_only_the_most_recent_images_are_held(client, toy_root):
    face = (toy_root / FACE).read_bytes()
    ids = [upload(client, face).json()["id"] for _ in range(4)]  # the console holds 3
    r = client.get(f"/api/images/{ids[0]}/input.png")
    assert r.status_code == 404 and "keeps the 3 most recent" in r.json()["error"]
    assert all(client.get(f"/api/images/{i}/input.png").status_code == 200 for i in ids[1:])


def test_requests_naming_another_host_are_refused(client):
    # a page elsewhere reaching this localhost server through DNS rebinding sends its own host name
    assert client.get("/api/model", headers={"Host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/model", headers={"Host": "localhost:8000"}).status_code == 200


def test_nothing_is_written_to_disk(editor, toy_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    console = Console(editor, max_upload_bytes=10 * 2**20)
    with served(console) as c:
        held = upload(c, (toy_root / FACE).read_bytes()).json()
        assert c.post("/api/edit", json={"image": held["id"], "values": {"Smiling": 1.5}}).status_code == 200
        assert upload(c, b"\0" * 5_000_000, "image/png").status_code == 415
    assert list(tmp_path.iterdir()) == []


def test_the_datasets_test_images_are_offered_when_present(editor, trained_run, toy_root, tmp_path):
    recipe = validate(editor.meta["recipe"])
    tests = TestImages(recipe, editor.attributes, toy_root).start()
    assert tests.wait(60) == "ready", tests.reason
    console = Console(editor, test_images=tests)
    with served(console) as c:
        info = c.get("/api/test-images?offset=0&limit=4").json()
        assert info["state"] == "ready" and info["count"] == 6 and len(info["items"]) == 4
        assert info["items"][0]["label"].startswith("test image 0: ")
        thumb = c.get("/api/test-images/2.png")
        assert np.array_equal(png_of(thumb.content), tests.split.images(np.array([2]))[0].permute(1, 2, 0).numpy())
        held = c.post("/api/test-images/2")
        assert held.status_code == 201 and held.json()["name"] == "test image 2"
        x = tests.split.images(np.array([2]))
        for mode in ("local", "residual", "clean", "decoded"):  # the test image is already the model's crop: the photo itself
            r = c.post("/api/edit", json={"image": held.json()["id"], "values": {"Smiling": 1}, "options": {"mode": mode}})
            expected = editor.edit(Image.fromarray(x[0].permute(1, 2, 0).numpy()), mode=mode, Smiling=1)
            assert np.array_equal(png_of(r.content), np.asarray(expected)), mode
        missing = c.post("/api/test-images/60")
        assert missing.status_code == 404 and "no test image 60; there are 6" in missing.json()["error"]
    # no dataset there: said why, and nothing generated in its place
    absent = TestImages(recipe, editor.attributes, tmp_path / "nowhere").start()
    assert absent.wait(60) == "absent" and "no dataset at" in absent.reason
    assert not (tmp_path / "nowhere").exists()


def test_no_test_images_when_turned_off(client):
    info = client.get("/api/test-images").json()
    assert info["state"] == "absent" and info["count"] == 0 and "turned off" in info["reason"]


# ---------------------------------------------------------------- n-valued attributes

@pytest.fixture(scope="module")
def flower_editor(flower_run):
    best, root = flower_run
    return faderkit.load(best), root


def test_an_n_valued_attribute_is_a_choice_of_values(flower_editor):
    editor, root = flower_editor
    with served(Console(editor)) as c:
        (attr,) = c.get("/api/model").json()["attributes"]
        assert attr["name"] == "color" and not attr["binary"] and "yellow" in attr["values"]
        flower = root / "jpg" / "image_00001.jpg"
        held = c.post("/api/images", content=flower.read_bytes(), headers={"Content-Type": "image/jpeg"}).json()
        assert held["values"]["color"] in attr["values"]  # the classifier's most likely colour
        r = c.post("/api/edit", json={"image": held["id"], "values": {"color": "blue"}})
        assert np.array_equal(png_of(r.content), np.asarray(editor.edit(flower, color="blue")))
        r = c.post("/api/edit", json={"image": held["id"], "values": {"color": "green"}})
        assert r.status_code == 400 and "not one of its values" in r.json()["error"]


# ---------------------------------------------------------------- the Python API and the command's parts

def test_soft_values_are_the_classifiers_probabilities(editor, toy_root):
    x = editor.prepare(toy_root / FACE)
    logits = editor.classifier(faderkit.imageio.to_unit(x))
    soft = editor.soft_values(torch.cat([x, x]))
    assert len(soft) == 2 and soft[0] == soft[1]
    assert soft[0]["Smiling"] == pytest.approx(logits[0, :2].softmax(0)[1].item())
    assert soft[0]["Eyeglasses"] == pytest.approx(logits[0, 2:].softmax(0)[1].item())


def test_a_decoded_edit_setting_every_attribute_needs_no_classifier(editor, toy_root, monkeypatch):
    x = editor.prepare(toy_root / FACE)
    label = editor.infer(faderkit.imageio.to_unit(x))[0, 1].item()
    partly = editor.edit_tensor(x, {"Smiling": 0.8}, "decoded")  # Eyeglasses from the classifier's label
    every = {"Smiling": 0.8, "Eyeglasses": float(label)}
    residual = editor.edit_tensor(x, every)

    def refuse(*args):
        raise AssertionError("the classifier ran")

    monkeypatch.setattr(editor.classifier, "forward", refuse)
    assert torch.equal(editor.edit_tensor(x, every, "decoded"), partly)
    with pytest.raises(AssertionError, match="the classifier ran"):  # a residual edit needs D(z, y), y inferred
        editor.edit_tensor(x, every)
    assert residual.shape == partly.shape


def test_fader_range_must_hold_absent_and_present():
    assert parse_fader_range("-1:2") == (-1.0, 2.0) and parse_fader_range("0:1") == (0.0, 1.0)
    for bad in ("0.5:2", "-1:0.8", "2", "a:b", "-11:2", "-1:12"):
        with pytest.raises(FaderkitError, match="--fader-range"):
            parse_fader_range(bad)


def test_bind_refuses_a_port_in_use_in_one_line():
    import socket

    held = bind("127.0.0.1", 0)
    port = held.getsockname()[1]
    try:
        # listening already: the URL is printed before the server runs, and a client then must wait, not be refused
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(FaderkitError, match=f"port {port} on 127.0.0.1 is already in use"):
            bind("127.0.0.1", port)
        assert url_of(held, "127.0.0.1") == f"http://127.0.0.1:{port}/"
    finally:
        held.close()
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_serve_without_its_extra_names_the_install_command(trained_run, monkeypatch):
    import sys

    from faderkit.serve import serve

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if not installed
    with pytest.raises(FaderkitError, match=r"pip install 'faderkit\[serve\]'"):
        serve(trained_run / "best.safetensors", port=0)


def test_the_page_reads_the_output_modes_from_the_api(trained_run):
    from faderkit.modes import MODES, OUTPUT_MODES

    console = Console(faderkit.load(trained_run / "best.safetensors"))
    described = console.describe()
    assert [m["name"] for m in described["modes"]] == list(OUTPUT_MODES) == ["local", "residual", "clean", "decoded"]
    assert [m["whole_photo"] for m in described["modes"]] == [m.whole_photo for m in MODES] == [True, True, True, False]
    mode_option = next(o for o in described["options"] if o["name"] == "mode")
    assert mode_option["choices"] == list(OUTPUT_MODES) and set(mode_option["notes"]) == set(OUTPUT_MODES)
