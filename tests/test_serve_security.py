"""The console on a network: a request from another site is refused (Origin / Sec-Fetch-Site), a token
is asked of every request when one is set (and one is generated beyond loopback), and the images
held are capped by bytes as well as by count. In Chromium: a page from another origin tries to
upload and edit, and fails."""

from __future__ import annotations

import http.client
import http.server
import io
import json
import threading
from urllib.parse import urlsplit

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import faderkit
from faderkit import FaderkitError
from faderkit.cli import cli
from faderkit.serve import Running, guard
from faderkit.serve.console import Console

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'faderkit[serve]'")

FACE = "img_align_celeba/000055.jpg"
TOKEN = "t0ken-for-the-tests-only"


@pytest.fixture(scope="module")
def editor(trained_run):
    return faderkit.load(trained_run / "best.safetensors")


def request(url, method, path, body=b"", headers=None):
    """(status, headers, body) of one plain HTTP request."""
    conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=120)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def held_count(console) -> int:
    return len(console._images)


def test_a_post_from_another_site_is_refused_and_changes_nothing(editor, toy_root):
    console = Console(editor)
    face = (toy_root / FACE).read_bytes()
    with Running(console, log=lambda m: None) as running:
        host = urlsplit(running.url).netloc
        own = {"Content-Type": "image/jpeg", "Origin": f"http://{host}", "Sec-Fetch-Site": "same-origin"}
        status, _, body = request(running.url, "POST", "/api/images", face, own)
        assert status == 201, body
        image = json.loads(body)["id"]
        for foreign in ({"Origin": "http://127.0.0.1:1"}, {"Origin": "http://evil.example"}, {"Origin": "null"},
                        {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site", "Origin": f"http://{host}"}):
            status, _, body = request(running.url, "POST", "/api/images", face, {"Content-Type": "image/jpeg", **foreign})
            assert status == 403, (foreign, body)
            message = json.loads(body)["error"]
            assert message.startswith("refused: a request from another site") and "\n" not in message
            edit = json.dumps({"image": image, "values": {"Smiling": 1}}).encode()
            status, _, body = request(running.url, "POST", "/api/edit", edit, {"Content-Type": "text/plain", **foreign})
            assert status == 403, (foreign, body)
        assert held_count(console) == 1
        # a GET from elsewhere is answered (an <img> may show an image), and a program without Origin may post
        assert request(running.url, "GET", "/api/model", headers={"Origin": "http://evil.example"})[0] == 200
        status, _, _ = request(running.url, "POST", "/api/edit", json.dumps({"image": image, "values": {}}).encode())
        assert status == 200


def test_with_a_token_every_request_needs_it_and_the_page_asks_for_it(editor, toy_root):
    console = Console(editor)
    with Running(console, log=lambda m: None, token=TOKEN) as running:
        status, _, body = request(running.url, "GET", "/api/model")
        assert status == 401 and "needs its token" in json.loads(body)["error"]
        status, _, body = request(running.url, "POST", "/api/images", (toy_root / FACE).read_bytes(),
                                  {"Content-Type": "image/jpeg"})
        assert status == 401 and held_count(console) == 0
        assert request(running.url, "GET", "/api/model", headers={"Authorization": "Bearer nope"})[0] == 401
        assert request(running.url, "GET", "/api/model", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert request(running.url, "GET", "/api/model", headers={"X-Faderkit-Token": TOKEN})[0] == 200
        status, _, page = request(running.url, "GET", "/")
        assert status == 401 and b"asks for its token" in page and b'<form method="get"' in page
        status, _, page = request(running.url, "GET", "/?token=wrong")
        assert status == 401 and b"not this console" in page
        status, headers, _ = request(running.url, "GET", f"/?token={TOKEN}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"].split(";")[0]
        assert "HttpOnly" in headers["set-cookie"] and "SameSite=Strict" in headers["set-cookie"]
        status, _, page = request(running.url, "GET", "/", headers={"Cookie": cookie})
        assert status == 200 and b"<title>faderkit console</title>" in page
        assert request(running.url, "GET", "/api/model", headers={"Cookie": cookie})[0] == 200
        assert request(running.url, "GET", "/api/model", headers={"Cookie": "faderkit_token_1=" + TOKEN})[0] == 401


def test_beyond_loopback_a_token_is_required_or_generated():
    said = []
    token = guard("0.0.0.0", None, said.append)
    assert len(token) >= 16 and "asks for a token" in said[0]
    assert guard("192.168.1.5", TOKEN, said.append) == TOKEN
    assert guard("127.0.0.1", None, said.append) is None
    with pytest.raises(FaderkitError, match="at least 16 characters"):
        guard("0.0.0.0", "short", said.append)
    with pytest.raises(FaderkitError, match="only letters, digits"):
        guard("0.0.0.0", "a token with spaces in it", said.append)


def test_the_cli_refuses_a_weak_token_in_one_line(trained_run):
    result = CliRunner().invoke(cli, ["serve", str(trained_run / "best.safetensors"), "--host", "0.0.0.0",
                                      "--token", "1234"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --token must be at least 16 characters")


def test_the_images_held_are_capped_by_bytes_as_well_as_by_count(editor):
    console = Console(editor, max_images=32, max_held_bytes=3 * 2**20, max_side=1024)
    photo = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (600, 800, 3), dtype=np.uint8)).save(photo, "PNG")
    ids = [console.add_upload(photo.getvalue(), f"p{i}.png")["id"] for i in range(4)]  # 1.4 MB each held
    assert held_count(console) == 2 and sum(h.picture.nbytes for h in console._images.values()) <= 3 * 2**20
    with pytest.raises(LookupError, match="3 MB at most"):
        console.get(ids[0])
    assert console.get(ids[-1]) is not None
    tiny = Console(editor, max_held_bytes=1)  # the newest is held even when it alone is over the cap
    tiny.add_upload(photo.getvalue())
    assert held_count(tiny) == 1


# ---------------------------------------------------------------- in Chromium

EVIL = """<!doctype html><title>elsewhere</title><script>
async function attack(target, image) {
  const tries = [
    fetch(target + "/api/edit", {method: "POST", body: JSON.stringify({image: image, values: {Smiling: 2}}),
                                 headers: {"Content-Type": "text/plain"}}),
    fetch(target + "/api/images", {method: "POST", mode: "no-cors", body: new Blob([new Uint8Array(64)])}),
    fetch(target + "/api/images", {method: "POST", body: new Uint8Array(64), headers: {"Content-Type": "image/png"}}),
  ];
  const out = [];
  for (const t of tries) { try { const r = await t; out.push(r.type + " " + r.status); } catch (e) { out.push("failed: " + e.name); } }
  return out;
}
</script>"""


@pytest.fixture(scope="module")
def browser():
    from test_serve_browser import CHROMIUM_ARGS, find_chromium

    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set FADERKIT_CHROMIUM); .ci/run installs it")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def elsewhere():
    """A page served from another origin (another port on the loopback)."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = EVIL.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_in_chromium_a_page_from_another_origin_cannot_upload_or_edit(browser, elsewhere, editor, toy_root, monkeypatch):
    from faderkit.serve import fence

    refused = []
    real_refuse = fence._refuse

    async def record(send, status, message):  # what the server answered, as it answered it
        refused.append((status, message))
        await real_refuse(send, status, message)

    monkeypatch.setattr(fence, "_refuse", record)
    console = Console(editor)
    face = (toy_root / FACE).read_bytes()
    with Running(console, log=lambda m: None) as running:
        image = console.add_upload(face, "face.jpg")["id"]
        edits = []
        original = console.edit
        console.edit = lambda *a, **k: (edits.append(a), original(*a, **k))[1]
        page = browser.new_page()
        page.goto(elsewhere)
        seen = page.evaluate("([t, i]) => attack(t, i)", [running.url.rstrip("/"), image])
        page.wait_for_timeout(200)
        page.close()
    # the browser sent the two simple requests (a text/plain POST, a no-cors upload; another port of the same
    # host is "same-site", not "same-origin") and the server refused
    # them; the third needs a preflight (OPTIONS), which the server does not grant, so it was never sent
    assert [status for status, _ in refused] == [403, 403], (refused, seen)
    assert all(m == "refused: a request from another site (Sec-Fetch-Site: same-site); only this console's own page "
                    "may upload or edit" for _, m in refused), refused
    assert seen[0].startswith("failed") and seen[1] == "opaque 0" and seen[2].startswith("failed"), seen
    assert edits == [] and held_count(console) == 1
