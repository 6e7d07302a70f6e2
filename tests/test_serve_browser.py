"""The mixing console's page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

`faderkit serve` runs as a real subprocess; the page is driven the way a person would: a file
chosen, a fader moved from the keyboard (and dragged with the mouse), a value picked. What the page
shows is compared with the library's own edit, pixel for pixel (the server sends PNG).

Skipped, with the reason, only where no browser can be had: `.ci/run` installs Debian's chromium
when it is missing, and the test extra installs Playwright for Python (its own browser download is
never used).
"""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

import faderkit

pytest.importorskip("starlette", reason="the serve extra is not installed: pip install 'faderkit[serve]'")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright for Python is not installed (pip install -e '.[test]')")

FACE = "img_align_celeba/000055.jpg"  # a test-split toy face
#: The closed network here refuses Chromium's background connections: turn them off.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def find_chromium() -> str | None:
    for candidate in (os.environ.get("FADERKIT_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    exe = find_chromium()
    if exe is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set FADERKIT_CHROMIUM); .ci/run installs it")
    with sync_api.sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Server:
    """`faderkit serve CHECKPOINT --port 0 ...` as a subprocess; ``url`` once it listens."""

    def __init__(self, checkpoint, *args, cwd):
        self.proc = subprocess.Popen([sys.executable, "-m", "faderkit.cli", "serve", str(checkpoint), "--port", "0",
                                      *map(str, args)], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.stderr: list[str] = []
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        line = self.proc.stdout.readline()  # "faderkit console: http://127.0.0.1:PORT/  (Ctrl-C to stop)"
        found = re.search(r"(http://\S+/)", line)
        if not found:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"faderkit serve did not start: {line!r} {''.join(self.stderr)}")
        self.url = found.group(1)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def server(trained_run, toy_root, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("serve-cwd")
    s = Server(trained_run / "best.safetensors", "--data-root", toy_root, cwd=cwd)
    yield s
    s.stop()
    assert list(cwd.iterdir()) == []  # nothing written


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text
          else None)
    pg.goto(server.url)
    pg.wait_for_selector("body[data-ready=true]")
    yield pg
    context.close()
    assert errors == [], errors  # no script error, no CSP violation


SETTLED = """() => {
    const img = document.getElementById('edit');
    if (document.getElementById('edit-figure').getAttribute('aria-busy') !== 'false' || !img.dataset.values) return false;
    const shown = JSON.parse(img.dataset.values);
    const sliders = [...document.querySelectorAll('input[type=range]')];
    const radios = [...document.querySelectorAll('#strips input[type=radio]:checked')];
    const options = JSON.parse(img.dataset.options || '{}');
    const picked = [...document.querySelectorAll('#options input[type=radio]:checked')];
    return sliders.every(s => shown[s.dataset.attribute] === Number(s.value))
        && radios.every(r => shown[r.name.replace(/^choice-/, '')] === r.value)
        && picked.every(r => options[r.name.replace(/^option-/, '')] === r.value);
}"""


def settled_preview(page) -> tuple[dict, np.ndarray]:
    """Wait until the shown edit is the one for the faders' current positions: (values, RGB pixels)."""
    page.wait_for_function(SETTLED, timeout=60_000)
    values = page.evaluate("JSON.parse(document.getElementById('edit').dataset.values)")
    b64 = page.evaluate("""async () => {
        const blob = await (await fetch(document.getElementById('download').href)).blob();
        const bytes = new Uint8Array(await blob.arrayBuffer());
        let s = ''; for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
    }""")
    with Image.open(io.BytesIO(base64.b64decode(b64))) as im:
        assert im.format == "PNG"
        return values, np.asarray(im.convert("RGB"))


def test_move_the_smiling_fader_and_the_preview_is_the_librarys_edit(page, trained_run, toy_root):
    editor = faderkit.load(trained_run / "best.safetensors")
    face = toy_root / FACE
    page.set_input_files("#file", str(face))
    values, first = settled_preview(page)
    # the faders start where the classifier places this image
    soft = editor.soft_values(editor.prepare(face))[0]
    assert values == {k: round(v, 2) for k, v in soft.items()}
    assert np.array_equal(first, np.asarray(editor.edit(face, **values)))

    slider = page.get_by_role("slider", name="Smiling")
    slider.focus()
    for _ in range(6):
        page.keyboard.press("Shift+ArrowUp")  # +0.1 each
    page.keyboard.press("ArrowUp")  # +0.01
    moved, shown = settled_preview(page)
    assert moved["Smiling"] == pytest.approx(min(2.0, values["Smiling"] + 0.61))
    assert moved["Eyeglasses"] == values["Eyeglasses"]
    assert page.locator("#out-Smiling").inner_text() == f"{moved['Smiling']:.2f}"
    assert not np.array_equal(shown, first)  # the preview changed
    assert np.array_equal(shown, np.asarray(editor.edit(face, **moved)))  # and is the library's edit

    # End goes to the top of the extrapolation range; Reset goes back to the classifier's value
    page.keyboard.press("End")
    top, shown_top = settled_preview(page)
    assert top["Smiling"] == 2.0 and np.array_equal(shown_top, np.asarray(editor.edit(face, **top)))
    page.get_by_role("button", name=re.compile(r"^Reset Smiling to")).click()
    back, shown_back = settled_preview(page)
    assert back == values and np.array_equal(shown_back, first)

    # the download is the PNG shown
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PNG").click()
    assert info.value.suggested_filename == "000055-edit.png"
    with Image.open(info.value.path()) as im:
        assert np.array_equal(np.asarray(im.convert("RGB")), shown_back)


def test_dragging_a_fader_coalesces_requests(page, trained_run, toy_root):
    """While a fader is dragged, at most one edit is in flight and the last one shown is for where it stopped."""
    editor = faderkit.load(trained_run / "best.safetensors")
    face = toy_root / FACE
    page.set_input_files("#file", str(face))
    settled_preview(page)
    log: list[tuple[str, float]] = []
    page.on("request", lambda r: log.append(("start", time.monotonic())) if r.url.endswith("/api/edit") else None)
    page.on("requestfinished", lambda r: log.append(("end", time.monotonic())) if r.url.endswith("/api/edit") else None)
    page.evaluate("""() => { window.__moves = 0;
        document.getElementById('fader-Smiling').addEventListener('input', () => window.__moves++); }""")
    fader = page.locator("#fader-Smiling")
    fader.scroll_into_view_if_needed()
    box = fader.bounding_box()
    x = box["x"] + box["width"] / 2
    page.mouse.move(x, box["y"] + box["height"] - 10)
    page.mouse.down()
    for i in range(40):
        page.mouse.move(x, box["y"] + box["height"] - 10 - i * (box["height"] - 20) / 40)
    page.mouse.up()
    values, shown = settled_preview(page)
    moves = page.evaluate("window.__moves")
    starts = [t for kind, t in log if kind == "start"]
    assert moves >= 20 and 1 <= len(starts) < moves  # coalesced: fewer requests than moves
    in_flight = 0
    for kind, _ in sorted(log, key=lambda e: e[1]):
        in_flight += 1 if kind == "start" else -1
        assert in_flight <= 1
    assert values["Smiling"] > 1.5
    assert np.array_equal(shown, np.asarray(editor.edit(face, **values)))


def test_a_bad_upload_shows_its_message_and_the_page_keeps_working(page, toy_root, tmp_path):
    notes = tmp_path / "notes.jpg"
    notes.write_text("just some notes\n")
    with page.expect_response(lambda r: r.url.endswith("/api/images")) as response:
        page.set_input_files("#file", str(notes))
    assert response.value.status == 415
    alert = page.get_by_role("alert")
    sync_api.expect(alert).to_have_text(re.compile(r"^Error: notes\.jpg is not in an image format faderkit can read"))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes((toy_root / FACE).read_bytes()[:400])
    with page.expect_response(lambda r: r.url.endswith("/api/images")) as response:
        page.set_input_files("#file", str(cut))
    assert response.value.status == 400
    sync_api.expect(alert).to_have_text(re.compile(r"cannot read image cut\.jpg: .* truncated or damaged"))
    page.set_input_files("#file", str(toy_root / FACE))  # the server still serves
    settled_preview(page)
    sync_api.expect(page.locator("#error")).to_be_empty()  # the message is cleared


DROP_OR_PASTE = """async ([how, b64]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const data = new DataTransfer();
    data.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
    const event = how === 'drop' ? new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true})
                                 : new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true});
    (how === 'drop' ? document.getElementById('drop') : document.body).dispatchEvent(event);
}"""


def test_an_image_can_be_dropped_or_pasted(page, trained_run, toy_root):
    editor = faderkit.load(trained_run / "best.safetensors")
    for how, face in (("drop", toy_root / FACE), ("paste", toy_root / "img_align_celeba/000054.jpg")):
        page.evaluate(DROP_OR_PASTE, [how, base64.b64encode(face.read_bytes()).decode()])
        page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Opened dropped.jpg')")
        values, shown = settled_preview(page)
        assert np.array_equal(shown, np.asarray(editor.edit(face, **values))), how
        page.evaluate("() => { document.getElementById('status').textContent = ''; }")


def test_keyboard_and_screen_reader_labels(page, toy_root):
    # before an image is open, the faders are there but disabled
    assert page.get_by_role("slider", name="Smiling").is_disabled()
    page.set_input_files("#file", str(toy_root / FACE))
    settled_preview(page)
    for name in ("Smiling", "Eyeglasses"):
        slider = page.get_by_role("slider", name=name)
        assert slider.is_enabled()
        assert re.fullmatch(r"-?\d\.\d\d, .+", slider.get_attribute("aria-valuetext"))
        sync_api.expect(page.get_by_role("button", name=re.compile(f"^Reset {name} to \\d\\.\\d\\d, what the classifier sees"))).to_have_count(1)
    sync_api.expect(page.get_by_role("img", name=re.compile(r"^Edit of 000055\.jpg \(local, aligned\): Smiling \d\.\d\d, Eyeglasses"))).to_be_visible()
    # Tab reaches the file chooser, then every fader and its reset button, in order
    page.locator("body").focus()
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    order = [r for r in reached if r in ("file", "fader-Smiling", "reset-Smiling", "fader-Eyeglasses", "reset-Eyeglasses")]
    assert order[:5] == ["file", "fader-Smiling", "reset-Smiling", "fader-Eyeglasses", "reset-Eyeglasses"], reached
    assert "download" in reached


def test_a_test_image_of_the_dataset_can_be_opened_and_is_marked_while_open(page, toy_root):
    thumbs = page.get_by_role("button", name=re.compile(r"^Open test image \d+: "))
    sync_api.expect(thumbs).to_have_count(6, timeout=60_000)  # the 6 test faces of the toy dataset
    sync_api.expect(page.locator('#test-strip button[aria-pressed="true"]')).to_have_count(0)
    thumbs.nth(1).click()
    values, shown = settled_preview(page)
    assert shown.shape == (32, 32, 3) and set(values) == {"Smiling", "Eyeglasses"}
    # the opened one is marked (for a screen reader: pressed), and only it
    sync_api.expect(page.locator('#test-strip button[aria-pressed="true"]')).to_have_count(1)
    assert thumbs.nth(1).get_attribute("aria-pressed") == "true"
    assert thumbs.nth(1).evaluate("b => getComputedStyle(b).borderTopColor") == "rgb(99, 197, 236)"  # --accent-2
    thumbs.nth(3).click()
    sync_api.expect(thumbs.nth(3)).to_have_attribute("aria-pressed", "true")
    sync_api.expect(page.locator('#test-strip button[aria-pressed="true"]')).to_have_count(1)
    # a file opened instead: no thumbnail marked
    page.set_input_files("#file", str(toy_root / FACE))
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Opened 000055.jpg')")
    sync_api.expect(page.locator('#test-strip button[aria-pressed="true"]')).to_have_count(0)


def test_an_n_valued_attribute_is_a_choice_of_values(browser, flower_run, tmp_path):
    best, root = flower_run
    editor = faderkit.load(best)
    s = Server(best, "--no-test-images", cwd=tmp_path)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(s.url)
        page.wait_for_selector("body[data-ready=true]")
        flower = root / "jpg" / "image_00001.jpg"
        page.set_input_files("#file", str(flower))
        values, _ = settled_preview(page)
        group = page.get_by_role("group", name="color")
        assert group.get_by_role("radio").count() == 7
        assert group.get_by_role("radio", name=values["color"]).is_checked()  # the classifier's colour
        target = "blue" if values["color"] != "blue" else "red"
        group.get_by_role("radio", name=target).check()
        picked, shown = settled_preview(page)
        assert picked == {"color": target}
        assert np.array_equal(shown, np.asarray(editor.edit(flower, color=target)))
    finally:
        context.close()
        s.stop()


def test_the_output_mode_is_a_choice_and_the_preview_is_the_librarys_edit_in_it(page, trained_run, toy_root):
    """Local (edit's default): the whole photo, changed where the attribute draws; residual: all the change; clean:
    the change without its faint part; decoded: the model's square. Each pixel for pixel."""
    editor = faderkit.load(trained_run / "best.safetensors")
    face = toy_root / FACE
    photo = np.asarray(editor.open(face))
    page.set_input_files("#file", str(face))
    values, _ = settled_preview(page)
    group = page.get_by_role("group", name="Output")
    local, residual, clean, decoded = (group.get_by_role("radio", name=re.compile(f"^{m}"))
                                       for m in ("local", "residual", "clean", "decoded"))
    assert local.is_checked() and not residual.is_checked() and not clean.is_checked() and not decoded.is_checked()
    page.get_by_role("slider", name="Smiling").focus()
    page.keyboard.press("End")
    values, shown_l = settled_preview(page)
    assert values["Smiling"] == 2.0
    assert shown_l.shape == photo.shape and np.array_equal(shown_l, np.asarray(editor.edit(face, **values)))
    original = page.locator("#original")
    assert original.get_attribute("src").endswith("/photo.png")

    local.focus()  # a radio group: the arrow keys pick
    page.keyboard.press("ArrowRight")
    assert residual.is_checked()
    values_r, shown = settled_preview(page)
    assert values_r == values and np.array_equal(shown, np.asarray(editor.edit(face, mode="residual", **values)))
    assert not np.array_equal(shown, shown_l)  # the local mode dropped some of the change
    page.keyboard.press("ArrowRight")
    assert clean.is_checked()
    values_c, shown_c = settled_preview(page)
    assert values_c == values and shown_c.shape == photo.shape  # the whole photo, without the faint change
    assert np.array_equal(shown_c, np.asarray(editor.edit(face, mode="clean", **values)))
    assert not np.array_equal(shown_c, shown)
    page.keyboard.press("ArrowRight")
    assert decoded.is_checked()
    values_d, shown_d = settled_preview(page)
    assert values_d == values and page.evaluate("JSON.parse(document.getElementById('edit').dataset.options)") == {
        "mode": "decoded", "align": "aligned"}
    assert shown_d.shape == (editor.image_size, editor.image_size, 3)
    assert np.array_equal(shown_d, np.asarray(editor.edit(face, mode="decoded", **values)))
    assert original.get_attribute("src").endswith("/input.png")  # compared with what the model saw
    assert "decoded" in page.locator("#edit").get_attribute("alt")

    page.get_by_role("slider", name="Smiling").focus()  # moved again from the keyboard, in the decoded mode
    page.keyboard.press("Home")
    low, shown_low = settled_preview(page)
    assert low["Smiling"] == -1.0 and np.array_equal(shown_low, np.asarray(editor.edit(face, mode="decoded", **low)))
    residual.check()
    back, shown_back = settled_preview(page)
    assert back == low and np.array_equal(shown_back, np.asarray(editor.edit(face, mode="residual", **low)))
    assert shown_back.shape == photo.shape and original.get_attribute("src").endswith("/photo.png")


def test_a_photo_with_faces_is_aligned_in_the_page_like_edit(page, trained_run, tmp_path):
    """A photo holding two toy faces: the page says what it found, edits every face like
    ``edit(photo, all_faces=True)`` with the fader that moved, and the Faces choice switches to the
    loader's crop."""
    from test_serve import two_faces_photo

    editor = faderkit.load(trained_run / "best.safetensors")
    path = tmp_path / "two-faces.png"
    Image.fromarray(two_faces_photo()).save(path)
    photo = Image.open(path).convert("RGB")
    page.set_input_files("#file", str(path))
    values, shown = settled_preview(page)
    assert "2 faces found, aligned like the training data" in page.locator("#status").inner_text()
    assert np.array_equal(shown, np.asarray(photo))  # the faders at their start: each face as it is
    page.get_by_role("slider", name="Smiling").focus()
    page.keyboard.press("End")
    moved, shown_moved = settled_preview(page)
    assert moved["Smiling"] == 2.0 and not np.array_equal(shown_moved, shown)
    assert np.array_equal(shown_moved, np.asarray(editor.edit(photo, all_faces=True, Smiling=2.0)))
    group = page.get_by_role("group", name="Faces")
    aligned, crop = (group.get_by_role("radio", name=re.compile(f"^{m}")) for m in ("aligned", "crop"))
    assert aligned.is_checked()
    crop.check()
    cropped, shown_crop = settled_preview(page)
    assert np.array_equal(shown_crop, np.asarray(editor.edit(photo, align=False, **cropped)))
    page.screenshot(path=str(tmp_path / "faces.png"))
