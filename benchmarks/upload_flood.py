"""`faderkit serve` under an upload flood: memory stays bounded and edits keep their latency.

A random-weight 64 px checkpoint of the published architecture (edit_latency.make_checkpoint) is
served by a real `faderkit serve --port 0` subprocess. --clients threads upload 20 MB-class images
(noise PNGs of about 6.5 MP, each a little different, under the 20 MB and 25 MP limits) as fast as
answers come, --uploads in all; beside them one client edits a small face continuously (random
fader values, edit's default mode: local, which for this checkpoint without change maps is residual)
and times each edit. The server's RSS is sampled every 0.1 s, and
its high-water mark (VmHWM, the kernel's exact peak) is read at the end.

The bound: the server's RSS after start-up and a first upload, plus what the console may hold or
handle at once: the held images (--max-held-mb, 256 MB by default), 4 upload bodies (20 MB each)
and 2 decodes (a 25 MP image decoded, made RGB and downscaled: about 3 copies of 75 MB each),
rounded up: baseline + 1 GiB.

Target (issue 25, 2 CPU cores): 1,000 uploads from 8 clients, peak RSS under the bound, every upload
201, p95 edit latency <= 150 ms at 64 px.

    python benchmarks/upload_flood.py                    # 1,000 uploads; minutes on 2 CPU cores
    python benchmarks/upload_flood.py --uploads 50       # a smoke run
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

import common
from edit_latency import make_checkpoint
from serve_latency import Server, make_faces, percentile

TARGET_P95_MS = 150
SLACK_MIB = 1024


def flood_images(count: int, side: tuple[int, int] = (2500, 2600)) -> list[bytes]:
    """``count`` noise PNGs of about 19.5 MB (noise does not compress), each different."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (side[1], side[0], 3), dtype=np.uint8)
    out = []
    for i in range(count):
        base[i % side[1], :] ^= 0xFF
        buf = io.BytesIO()
        Image.fromarray(base).save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def cpu_name() -> str:
    info = Path("/proc/cpuinfo").read_text()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    return f"{name}, {len(info.split('processor')) - 1} logical cores{', AMX' if 'amx_bf16' in flags else ''}"


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Uploader(threading.Thread):
    def __init__(self, url: str, images: list[bytes], left: list[int], lock: threading.Lock, seed: int):
        super().__init__(daemon=True)
        self.netloc, self.images, self.left, self.lock = urlsplit(url).netloc, images, left, lock
        self.rng = random.Random(seed)
        self.done, self.statuses, self.errors, self.seconds = 0, {}, [], []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.netloc, timeout=600)
        try:
            while True:
                with self.lock:
                    if self.left[0] <= 0:
                        return
                    self.left[0] -= 1
                t0 = time.perf_counter()
                conn.request("POST", "/api/images", body=self.rng.choice(self.images),
                             headers={"Content-Type": "image/png", "X-Filename": "flood.png"})
                r = conn.getresponse()
                body = r.read()
                self.seconds.append(time.perf_counter() - t0)
                self.statuses[r.status] = self.statuses.get(r.status, 0) + 1
                if r.status != 201:
                    self.errors.append(f"{r.status} {body[:200]!r}")
                self.done += 1
        except Exception as exc:  # noqa: BLE001 - counted and reported
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


class Editor(threading.Thread):
    def __init__(self, url: str, face: bytes, stop: threading.Event):
        super().__init__(daemon=True)
        self.netloc, self.face, self.stop = urlsplit(url).netloc, face, stop
        self.latencies, self.errors, self.lost, self.timing = [], [], 0, []

    def run(self) -> None:
        conn = http.client.HTTPConnection(self.netloc, timeout=600)
        rng = random.Random(1)

        def upload() -> str:
            conn.request("POST", "/api/images", body=self.face, headers={"Content-Type": "image/jpeg"})
            r = conn.getresponse()
            return json.loads(r.read())["id"]
        try:
            image = upload()
            while not self.stop.is_set():
                values = {name: round(rng.uniform(-1, 2), 2) for name in common.ATTRIBUTES}
                t0 = time.perf_counter()
                conn.request("POST", "/api/edit", body=json.dumps({"image": image, "values": values}),
                             headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                ms = 1000 * (time.perf_counter() - t0)
                if r.status == 404:  # pushed out of the store by the flood: open it again, as the page does
                    self.lost += 1
                    image = upload()
                    continue
                self.latencies.append(ms)
                parts = dict(p.split(";dur=") for p in r.getheader("Server-Timing", "").replace(" ", "").split(",") if ";dur=" in p)
                self.timing.append({k: float(v) for k, v in parts.items()})
                if r.status != 200 or not body.startswith(b"\x89PNG"):
                    self.errors.append(f"{r.status} {body[:200]!r}")
                time.sleep(0.02)  # a person moving a fader: about 40 edits a second at most
        except Exception as exc:  # noqa: BLE001
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uploads", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--distinct", type=int, default=4, help="distinct flood images (each ~19.5 MB) sent in turn")
    ap.add_argument("--threads", type=int, default=2, help="the server's torch threads")
    ap.add_argument("--max-seconds", type=float, default=1500, help="stop the flood after this long, and say so")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_checkpoint(tmp / "flood64.safetensors", "published", size=64)
        face = make_faces(tmp, 1)[0].read_bytes()
        images = flood_images(args.distinct)
        server = Server(tmp / "flood64.safetensors", args.threads)
        try:
            first = Uploader(server.url, images[:1], [1], threading.Lock(), 0)
            first.run()  # the first decode: allocators warm
            if first.errors:
                raise SystemExit(f"the first upload failed: {first.errors[0]} (server exit status {server.proc.poll()})")
            baseline = status_kib(server.proc.pid, "VmRSS") / 1024
            left, lock, stop = [args.uploads], threading.Lock(), threading.Event()
            uploaders = [Uploader(server.url, images, left, lock, seed) for seed in range(args.clients)]
            editor = Editor(server.url, face, stop)
            samples, start = [], time.monotonic()
            editor.start()
            for u in uploaders:
                u.start()
            while any(u.is_alive() for u in uploaders):
                samples.append(status_kib(server.proc.pid, "VmRSS") / 1024)
                if time.monotonic() - start > args.max_seconds:
                    with lock:
                        left[0] = 0
                time.sleep(0.1)
            wall = time.monotonic() - start
            stop.set()
            editor.join(60)
            peak = status_kib(server.proc.pid, "VmHWM") / 1024
            end = status_kib(server.proc.pid, "VmRSS") / 1024
        finally:
            server.stop()

    done = sum(u.done for u in uploaders)
    statuses: dict[int, int] = {}
    for u in uploaders:
        for k, v in u.statuses.items():
            statuses[k] = statuses.get(k, 0) + v
    lat = editor.latencies
    figures = {
        "cpu": cpu_name(),
        "uploads_asked": args.uploads, "uploads_done": done, "upload_statuses": statuses, "clients": args.clients,
        "upload_mb": round(len(images[0]) / 2**20, 1), "wall_s": round(wall, 1),
        "upload_median_s": round(statistics.median(s for u in uploaders for s in u.seconds), 2) if done else None,
        "rss_baseline_mib": round(baseline), "rss_bound_mib": round(baseline + SLACK_MIB),
        "rss_peak_sampled_mib": round(max(samples)) if samples else None, "rss_peak_vmhwm_mib": round(peak),
        "rss_end_mib": round(end),
        "edits": len(lat), "edit_p50_ms": round(statistics.median(lat), 1) if lat else None,
        "edit_p95_ms": round(percentile(lat, 95), 1) if lat else None, "edit_max_ms": round(max(lat), 1) if lat else None,
        "edit_image_evicted": editor.lost,
        **{f"edit_server_{k}_p50_ms": round(statistics.median(t.get(k, 0) for t in editor.timing), 1)
           for k in ("queue", "model", "png") if editor.timing},
        **{f"edit_server_{k}_p95_ms": round(percentile([t.get(k, 0) for t in editor.timing], 95), 1)
           for k in ("queue", "model", "png") if editor.timing},
        "errors": [e for u in uploaders for e in u.errors][:5] + editor.errors[:5],
    }
    print(json.dumps(figures, indent=1))
    if args.json:
        args.json.write_text(json.dumps({**figures, "edit_ms": lat, "rss_samples_mib": samples}))
    ok = (not figures["errors"] and done == args.uploads and peak <= baseline + SLACK_MIB
          and lat and percentile(lat, 95) <= TARGET_P95_MS)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
