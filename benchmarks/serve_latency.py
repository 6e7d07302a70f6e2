"""`faderkit serve` latency and load: fader move to updated preview in a real Chromium, then many clients.

For each image size (64 and 256 px by default) a random-weight checkpoint of the published
architecture with its attribute classifier is written (edit_latency.make_checkpoint; latency does
not depend on the weights' values) and served by a real `faderkit serve --port 0` subprocess.

Latency: headless Chromium (Debian's chromium through Playwright) opens the page, uploads a toy face
at CelebA's native 178x218, then moves the Smiling fader --moves times, one move after the last
preview is shown, each to a new value. A move is timed in the page, from the fader's input event
to the new preview decoded and on screen (the page's `faderkit:preview` event). Beside it, the
server's own parts (its Server-Timing header: waiting for the model thread, the model, PNG encoding);
the rest is HTTP, the browser's PNG decoding and the page. --mode picks the page's output mode
(residual: the whole 178x218 photo changed, as local, edit's default, does; decoded: the model's square).

Load: --clients threads, each a keep-alive HTTP client, upload a face, then post edits with random
fader values as fast as answers come, for --duration seconds (every 25th request uploads a new face,
so the server's bounded store of images turns over). Every answer must be 200 and a PNG. The server's
RSS (/proc/PID/status) is sampled every second; "flat" compares the highest RSS after the first
--warmup-s seconds with the RSS at that point.

Targets (issue 12, 2 CPU cores): p95 <= 150 ms at 64 px, <= 300 ms at 256 px; under 8 clients for
60 s no error and server RSS flat within 10%.

    python benchmarks/serve_latency.py                  # ~4 min on 2 CPU cores
    python benchmarks/serve_latency.py --quick          # smoke run: 20 moves, 2 clients for 5 s
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import common
from edit_latency import make_checkpoint

TARGET_P95_MS = {64: 150, 256: 300}
TARGET_RSS_GROWTH = 0.10
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

#: One fader move, timed in the page: input event -> the preview for that value decoded and shown.
MOVE_JS = """async (value) => {
    const fader = document.getElementById('fader-Smiling');
    const shown = new Promise((resolve) => {
        const on = (e) => { if (e.detail.values.Smiling === value) {
            document.removeEventListener('faderkit:preview', on); resolve(performance.now()); } };
        document.addEventListener('faderkit:preview', on);
    });
    const t0 = performance.now();
    fader.value = value;
    fader.dispatchEvent(new Event('input', {bubbles: true}));
    const t1 = await shown;
    const entries = performance.getEntriesByType('resource').filter(e => e.name.endsWith('/api/edit'));
    const last = entries[entries.length - 1];
    performance.clearResourceTimings();
    const timing = Object.fromEntries((last ? last.serverTiming : []).map(t => [t.name, t.duration]));
    return {ms: t1 - t0, queue_ms: timing.queue ?? null, model_ms: timing.model ?? null, png_ms: timing.png ?? null};
}"""


def make_faces(folder: Path, count: int) -> list[Path]:
    """``count`` toy faces at CelebA's native 178x218, JPEG (as a user's dataset image would be)."""
    from PIL import Image

    from faderkit_plugins.toyfaces.generate import identity_and_attributes
    from faderkit_plugins.toyfaces.render import render

    paths = []
    for i in range(count):
        identity, attrs = identity_and_attributes(0, i + 1)
        path = folder / f"face{i}.jpg"
        Image.fromarray(render(identity, attrs)).save(path, quality=95)
        paths.append(path)
    return paths


class Server:
    """`faderkit serve CKPT --port 0 --no-test-images --threads N` as a subprocess."""

    def __init__(self, ckpt: Path, threads: int):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        self.proc = subprocess.Popen([sys.executable, "-m", "faderkit.cli", "serve", str(ckpt), "--port", "0",
                                      "--no-test-images", "--threads", str(threads)], stdout=subprocess.PIPE,
                                     text=True, env=env)
        line = self.proc.stdout.readline()
        found = re.search(r"(http://\S+/)", line)
        if not found:
            self.proc.kill()
            raise SystemExit(f"faderkit serve did not start: {line!r}")
        self.url = found.group(1)

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def browser_latency(url: str, face: Path, moves: int, chromium: str, mode: str) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url)
            page.wait_for_selector("body[data-ready=true]")
            page.check(f"#option-mode input[value={mode}]")
            page.set_input_files("#file", str(face))
            page.wait_for_function("() => document.getElementById('edit').dataset.serial", timeout=120_000)
            # 5 warm-up moves, then the timed ones: each to a value not shown just before
            rng = random.Random(0)
            values = [round(rng.uniform(-1, 2), 2) for _ in range(moves + 5)]
            for i in range(1, len(values)):
                if values[i] == values[i - 1]:
                    values[i] = round(values[i] + 0.01 if values[i] < 2 else values[i] - 0.01, 2)
            results = [page.evaluate(MOVE_JS, v) for v in values]
        finally:
            browser.close()
    timed = results[5:]
    ms = [r["ms"] for r in timed]
    out = {"moves": len(ms), "median_ms": statistics.median(ms), "p95_ms": percentile(ms, 95), "max_ms": max(ms)}
    for part in ("queue", "model", "png"):  # the server's parts (its Server-Timing header)
        got = [r[f"{part}_ms"] for r in timed if r[f"{part}_ms"] is not None]
        out[f"server_{part}_median_ms"] = statistics.median(got) if got else None
    return {**out, "all_ms": ms}


class LoadClient(threading.Thread):
    """One keep-alive client: upload a face, then post edits with random values until ``stop_at``."""

    def __init__(self, url: str, faces: list[Path], names: list[str], seed: int, stop_at: float, mode: str):
        super().__init__(daemon=True)
        self.mode = mode
        self.netloc, self.faces, self.names = urlsplit(url).netloc, faces, names
        self.rng, self.stop_at = random.Random(seed), stop_at
        self.latencies, self.errors, self.uploads = [], [], 0

    def _request(self, conn, method, path, body, kind):
        conn.request(method, path, body=body, headers={"Content-Type": kind})
        r = conn.getresponse()
        return r.status, r.read()

    def _upload(self, conn) -> str:
        face = self.rng.choice(self.faces)
        status, body = self._request(conn, "POST", "/api/images", face.read_bytes(), "image/jpeg")
        if status != 201:
            raise RuntimeError(f"upload: {status} {body[:200]!r}")
        self.uploads += 1
        return json.loads(body)["id"]

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.netloc, timeout=120)
        try:
            image = self._upload(conn)
            n = 0
            while time.monotonic() < self.stop_at:
                n += 1
                if n % 25 == 0:
                    image = self._upload(conn)
                values = {name: round(self.rng.uniform(-1, 2), 2) for name in self.names}
                t0 = time.perf_counter()
                status, body = self._request(conn, "POST", "/api/edit", json.dumps({"image": image, "values": values, "options": {"mode": self.mode}}),
                                             "application/json")
                self.latencies.append(1000 * (time.perf_counter() - t0))
                if status != 200 or not body.startswith(b"\x89PNG"):
                    self.errors.append(f"edit: {status} {body[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - counted and reported, never hidden
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


def load_test(server: Server, faces: list[Path], clients: int, duration: float, warmup_s: float, mode: str) -> dict:
    names = list(common.ATTRIBUTES)
    start = time.monotonic()
    stop_at = start + duration
    threads = [LoadClient(server.url, faces, names, seed, stop_at, mode) for seed in range(clients)]
    for t in threads:
        t.start()
    samples = []  # (seconds since start, RSS MiB)
    while any(t.is_alive() for t in threads):
        samples.append((time.monotonic() - start, server.rss_mib()))
        time.sleep(1.0)
    for t in threads:
        t.join()
    latencies = [ms for t in threads for ms in t.latencies]
    errors = [e for t in threads for e in t.errors]
    after = [rss for s, rss in samples if s >= warmup_s]
    base = after[0] if after else float("nan")
    peak = max(after) if after else float("nan")
    return {"clients": clients, "duration_s": duration, "requests": len(latencies),
            "uploads": sum(t.uploads for t in threads), "requests_per_s": len(latencies) / duration,
            "errors": len(errors), "first_errors": errors[:5],
            "median_ms": statistics.median(latencies) if latencies else None,
            "p95_ms": percentile(latencies, 95) if latencies else None,
            "rss_at_warmup_mib": base, "rss_peak_after_warmup_mib": peak, "rss_end_mib": after[-1] if after else None,
            "rss_growth": (peak - base) / base if after else None, "rss_samples": samples}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256], choices=sorted(common.LAYERS))
    ap.add_argument("--moves", type=int, default=200, help="timed fader moves per size (after 5 warm-up moves)")
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients of the load test")
    ap.add_argument("--duration", type=float, default=60, help="seconds of the load test, per size")
    ap.add_argument("--warmup-s", type=float, default=10, help="seconds of load before the RSS baseline")
    ap.add_argument("--chromium", default=os.environ.get("FADERKIT_CHROMIUM") or shutil.which("chromium")
                    or shutil.which("chromium-browser"), help="the browser to drive [default: chromium on PATH]")
    ap.add_argument("--mode", default="residual", choices=["local", "residual", "clean", "decoded"],
                    help="the page's output mode [default: residual, as measured since issue 12; local, edit's default "
                         "now, is residual times a mask, and the random-weight checkpoint here stores no maps]")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 moves, 2 clients for 5 s")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.moves, args.clients, args.duration, args.warmup_s = 20, 2, 5, 1
    if not args.chromium:
        raise SystemExit("no Chromium found: apt-get install chromium, or give --chromium PATH")

    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="faderkit-serve-") as tmp:
        faces = make_faces(Path(tmp), max(2, args.clients))
        for size in args.sizes:
            ckpt = Path(tmp) / f"model{size}.safetensors"
            info = make_checkpoint(ckpt, "published", size=size)
            server = Server(ckpt, args.threads)
            try:
                print(f"{size} px: {args.moves} fader moves in Chromium ...", file=sys.stderr, flush=True)
                lat = browser_latency(server.url, faces[0], args.moves, args.chromium, args.mode)
                print(f"{size} px: {args.clients} clients for {args.duration:g} s ...", file=sys.stderr, flush=True)
                load = load_test(server, faces, args.clients, args.duration, args.warmup_s, args.mode)
            finally:
                server.stop()
            results[size] = {"model": info, "latency": lat, "load": load}
            target = TARGET_P95_MS.get(size)
            rows.append([f"{size} px", "move -> preview (Chromium)", f"{lat['median_ms']:.1f} ms",
                         f"{lat['p95_ms']:.1f} ms", f"<= {target} ms" if target else "-",
                         ("met" if lat["p95_ms"] <= target else "NOT MET") if target else "-"])
            for part, what in (("model", "model (the edit; residual: + paste)"), ("png", "PNG encoding"), ("queue", "queue")):
                rows.append(["", f"  of which server: {what}", common.fmt(lat[f"server_{part}_median_ms"]), "-", "-",
                             "-"])
            rows.append(["", f"{args.clients} clients x {args.duration:g} s: requests (errors)",
                         f"{load['requests']} ({load['errors']})", f"{load['requests_per_s']:.1f}/s",
                         "0 errors", "met" if load["errors"] == 0 else "NOT MET"])
            rows.append(["", "  latency under load (median, p95)", common.fmt(load["median_ms"]),
                         common.fmt(load["p95_ms"]), "-", "-"])
            growth = load["rss_growth"]
            rows.append(["", "  server RSS: at warm-up -> peak", f"{load['rss_at_warmup_mib']:.0f} MiB",
                         f"{load['rss_peak_after_warmup_mib']:.0f} MiB ({growth:+.1%})", "<= +10%",
                         "met" if growth is not None and growth <= TARGET_RSS_GROWTH else "NOT MET"])

    notes = [f"published architecture (layers per size {dict((s, common.LAYERS[s]) for s in args.sizes)}), random "
             f"weights, {len(common.ATTRIBUTES)} attributes; output mode {args.mode}; server threads {args.threads}; {args.moves} timed moves "
             "after 5 warm-up moves; load: RSS baseline after "
             f"{args.warmup_s:g} s; every 25th request of a client uploads a new face"]
    common.print_table("faderkit serve: fader move to preview, and load", ["size", "figure", "median / value", "p95",
                                                                           "target", "met"], rows, notes, left=2)
    common.write_json(args.json, {"benchmark": "serve_latency", "environment": common.environment("cpu", args.threads), "mode": args.mode,
                                  "results": {str(k): v for k, v in results.items()}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
