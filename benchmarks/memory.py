"""Peak memory (RSS) of a training process as the dataset grows.

For each dataset size, generates toy faces once (data/bench-toyfaces-<count>; 100k images take
several minutes and ~2 GB of disk), builds their uint8 cache outside the measurement, then runs
`faderkit train` as a child process for --steps iterations (classifier first, --classifier-steps;
one evaluation, sample grid and checkpoint at the end) and measures the child alone:
  peak RSS      ru_maxrss of the child (os.wait4), the figure the targets are about
  anon / file   the largest RssAnon / RssFile seen polling /proc/<pid>/status: anonymous pages are
                what the process allocated itself; file-backed pages are shared libraries (libtorch
                alone is ~400 MiB) plus the pages of the memory-mapped image cache read so far
                (shared, reclaimable page cache: over a long run they grow towards the cache size)
64 px: the quickstart recipe's model (4 layers from 32, 5 attributes). 256 px: the published
architecture (6 layers from 32, max 512; 3 attributes).

Targets (issue 5): peak RSS flat within 10% from 2k to 100k images at 64 px; <= 3 GB at 256 px.

    python benchmarks/memory.py                                   # 2k, 20k, 100k at 64 px + 2k at 256 px
    python benchmarks/memory.py --sizes 2000 20000 --size-256 0   # fewer sizes; 0 skips 256 px
    python benchmarks/memory.py --quick                           # smoke run: 300 and 600 images, a few steps
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import common

GB = 1e9
FLAT_MAX = 0.10


def _status_kib(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem"):
                    out[key] = int(value.split()[0])
    except (OSError, ValueError):
        pass
    return out


def run_child(cmd: list[str], log: Path, poll_s: float = 0.05) -> dict:
    """Run ``cmd``, polling its /proc status; returns peak figures in MiB and the wall time."""
    import subprocess

    t0 = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        peaks: dict[str, int] = {}
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            for k, v in _status_kib(proc.pid).items():
                peaks[k] = max(peaks.get(k, 0), v)
            time.sleep(poll_s)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}); its output:\n"
                         + log.read_text(errors="replace")[-3000:])
    return {"peak_rss_mib": usage.ru_maxrss / 1024, "polled_hwm_mib": peaks.get("VmHWM", 0) / 1024,
            "peak_anon_mib": peaks.get("RssAnon", 0) / 1024, "peak_file_mib": peaks.get("RssFile", 0) / 1024,
            "wall_s": time.perf_counter() - t0}


def recipe_dict(root: Path, image_size: int, args) -> dict:
    from faderkit.recipe import read_yaml

    if image_size == 256:
        raw = common.paper_recipe_dict(root, 256, 6)
    else:
        raw = read_yaml(common.REPO / "recipes" / "quickstart.yaml")
        raw["data"].update(root=str(root), image_size=image_size)
    steps = args.steps_256 if image_size == 256 else args.steps
    raw = common.with_train(raw, steps=steps, threads=args.threads, log_every=max(1, steps // 4), eval_every=steps,
                            sample_every=steps, checkpoint_every=steps, eval_batches=args.eval_batches)
    raw["classifier"].update(steps=args.classifier_steps)
    return raw


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000], help="dataset sizes at 64 px")
    ap.add_argument("--size-256", type=int, default=2000, help="dataset size at 256 px (0: skip)")
    ap.add_argument("--steps", type=int, default=200, help="training iterations at 64 px")
    ap.add_argument("--steps-256", type=int, default=20, help="training iterations at 256 px")
    ap.add_argument("--classifier-steps", type=int, default=20)
    ap.add_argument("--eval-batches", type=int, default=8, help="validation batches of the final evaluation")
    ap.add_argument("--device", default="cpu", help="the child's --device (the targets are about CPU training)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 300 and 600 images at 64 px, 300 at 256 px, "
                    "4 steps (2 at 256 px), 2 classifier steps, 1 evaluation batch")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.size_256, args.steps, args.steps_256 = [300, 600], 300, 4, 2
        args.classifier_steps, args.eval_batches = 2, 1
    import yaml

    jobs = [(n, 64) for n in args.sizes] + ([(args.size_256, 256)] if args.size_256 else [])
    results, rows = [], []
    with tempfile.TemporaryDirectory(prefix="faderkit-mem-") as tmp:
        for count, size in jobs:
            root = common.ensure_toyfaces(count)
            ds = common.open_toyfaces(root, size, attributes=None)  # the cache, built outside the measurement
            cache_mib = ds.ensure_cache().path.stat().st_size / 2**20
            n_train = len(ds.split("train"))
            del ds
            recipe = Path(tmp) / f"r{count}_{size}.yaml"
            recipe.write_text(yaml.safe_dump(recipe_dict(root, size, args), sort_keys=False))
            cmd = [sys.executable, "-m", "faderkit.cli", "train", str(recipe), "--run-dir",
                   str(Path(tmp) / f"run{count}_{size}"), "--quiet", "--device", args.device]
            print(f"{size} px, {count:,} images: training in a child process ...", file=sys.stderr, flush=True)
            r = run_child(cmd, Path(tmp) / f"log{count}_{size}.txt")
            r.update(images=count, image_size=size, train_images=n_train, cache_mib=cache_mib,
                     steps=args.steps_256 if size == 256 else args.steps)
            results.append(r)
            rows.append([f"{size} px", f"{count:,}", f"{cache_mib:,.0f}", f"{r['peak_rss_mib']:,.0f}",
                         f"{r['peak_anon_mib']:,.0f}", f"{r['peak_file_mib']:,.0f}", r["steps"], f"{r['wall_s']:.0f}"])
    at64 = [r["peak_rss_mib"] for r in results if r["image_size"] == 64]
    spread = max(at64) / min(at64) - 1 if len(at64) > 1 else None
    at256 = [r["peak_rss_mib"] for r in results if r["image_size"] == 256]
    targets = {"flat_64px_spread": spread, "flat_64px_met": None if spread is None else spread <= FLAT_MAX,
               "peak_256px_mib": at256[0] if at256 else None,
               "peak_256px_met": (at256[0] * 2**20 <= 3 * GB) if at256 else None}
    notes = []
    if spread is not None:
        notes.append(f"64 px: peak RSS from {min(at64):,.0f} to {max(at64):,.0f} MiB across "
                     f"{min(args.sizes):,}..{max(args.sizes):,} images: spread {spread:.1%} (target <= 10%): "
                     f"{'met' if targets['flat_64px_met'] else 'NOT MET'}")
    if at256:
        notes.append(f"256 px: peak RSS {at256[0]:,.0f} MiB = {at256[0] * 2**20 / GB:.2f} GB (target <= 3 GB): "
                     f"{'met' if targets['peak_256px_met'] else 'NOT MET'}")
    notes.append(f"{args.threads} threads; classifier {args.classifier_steps} steps first; peak RSS = ru_maxrss of "
                 "the child; anon / file = largest RssAnon / RssFile polled (file: shared libraries + mapped cache "
                 "pages read)")
    common.print_table("peak memory of a training process vs dataset size",
                       ["size", "images", "cache MiB", "peak RSS MiB", "anon MiB", "file MiB", "steps", "wall s"],
                       rows, notes, left=1)
    common.write_json(args.json, {"benchmark": "memory", "environment": common.environment("cpu", args.threads),
                                  "settings": {k: v for k, v in vars(args).items() if k != "json"},
                                  "results": results, "targets": targets})
    return 0


if __name__ == "__main__":
    sys.exit(main())
