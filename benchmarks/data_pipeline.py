"""Data-pipeline throughput: BatchStream.batch + prepare_batch, from the uint8 memmap cache to float with flips.

Exactly what the Trainer does for each batch: gather the batch's rows from the memory-mapped
uint8 cache (random order), then move to the device, convert to [-1, 1] floats and flip half of
the images. Measured with a warm page cache (the epochs before the timing read every row), as
the median of several timed windows. The ratio divides it by the training throughput at the same
size (images/s of the default recipe: shared_batch, fp32 eager), taken from a
train_throughput.py --json file, or else measured here with a short run.

Target (issue 5): the data pipeline >= 5x the training throughput at the same size.

    python benchmarks/data_pipeline.py                                  # 64 and 256 px (~2 min on 2 CPU cores)
    python benchmarks/data_pipeline.py --train-json train.json          # ratio from train_throughput.py's figures
    python benchmarks/data_pipeline.py --quick                          # smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import common


def pipeline(split, size: int, batch_size: int, device, args) -> dict:
    """Images/s of the gather alone, of prepare_batch alone and of both (the real pipeline)."""
    import torch

    from faderkit.data import BatchStream, prepare_batch

    stream = BatchStream(split, batch_size, seed=0)
    gen = torch.Generator().manual_seed(0)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for b in range(-(-len(split) // batch_size)):  # one epoch: every row in the page cache
        stream.batch(b)
    counter = iter(range(10**9))
    images, _ = stream.batch(0)
    parts = {
        "gather": lambda: stream.batch(next(counter)),
        "prepare": lambda: prepare_batch(images, device, True, gen),
        "both": lambda: prepare_batch(stream.batch(next(counter))[0], device, True, gen),
    }
    out = {}
    for name, step in parts.items():
        t = common.time_iterations(step, args.warmup, args.windows, 0, args.window_seconds, sync)
        out[f"{name}_images_per_s"] = batch_size / t["s_per_iter"]
    return out


def training_images_per_s(size: int, args, device) -> tuple[float, str]:
    if args.train_json:
        data = json.loads(Path(args.train_json).read_text())
        if data["settings"]["batch_size"] != args.batch_size:
            print(f"warning: {args.train_json} was measured at batch {data['settings']['batch_size']}, "
                  f"this at batch {args.batch_size}", file=sys.stderr)
        results = data["results"]
        for r in results:
            if r["size"] == size and r["variant"] == "default":
                return r["images_per_s"], f"{args.train_json}"
        raise SystemExit(f"{args.train_json} has no 'default' row at {size} px; run train_throughput.py with it")
    import train_throughput

    ns = argparse.Namespace(layers=dict(common.LAYERS), batch_size=args.batch_size, threads=args.threads,
                            warmup=args.train_warmup, windows=args.train_windows, window_iters=1, window_seconds=0)
    r = train_throughput.measure(common.ensure_toyfaces(args.count), size, {}, ns, device.type)
    return r["images_per_s"], f"measured here ({args.train_warmup} warm-up + median of {args.train_windows} iterations)"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--count", type=int, default=1000, help="toy faces to generate once and read")
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--window-seconds", type=float, default=2.0)
    ap.add_argument("--device", default="cpu", help="where prepare_batch puts the batch: cpu, cuda, auto")
    ap.add_argument("--train-json", type=Path, help="train_throughput.py --json output to take training images/s from")
    ap.add_argument("--train-warmup", type=int, default=2, help="without --train-json: warm-up training iterations")
    ap.add_argument("--train-windows", type=int, default=3, help="without --train-json: timed training iterations")
    ap.add_argument("--quick", action="store_true", help="smoke run: 200 faces, short windows, 1 training iteration")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.warmup, args.windows, args.window_seconds = 200, 1, 2, 0.2
        args.train_warmup, args.train_windows = 1, 1
    common.set_threads(args.threads)

    import torch

    device = torch.device(args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu"))
    root = common.ensure_toyfaces(args.count)
    results, rows = [], []
    for size in args.sizes:
        print(f"{size} px ...", file=sys.stderr, flush=True)
        split = common.open_toyfaces(root, size).split("train")
        r = pipeline(split, size, args.batch_size, device, args)
        train_ips, source = training_images_per_s(size, args, device)
        ratio = r["both_images_per_s"] / train_ips
        r.update(size=size, training_images_per_s=train_ips, training_source=source, ratio=ratio, target_met=ratio >= 5)
        results.append(r)
        rows.append([f"{size} px", common.fmt(r["gather_images_per_s"], 0), common.fmt(r["prepare_images_per_s"], 0),
                     common.fmt(r["both_images_per_s"], 0), common.fmt(train_ips), f"{ratio:,.1f}x",
                     "met" if ratio >= 5 else "NOT MET"])
    notes = [f"batch {args.batch_size}, {len(split)} training images, device {device}, {args.threads} threads; "
             f"training images/s: {source}",
             "gather = BatchStream.batch (memmap rows -> uint8 tensor); prepare = prepare_batch (to device, float, "
             "flips); pipeline = both, as the Trainer runs them; target: pipeline >= 5x training"]
    common.print_table("data pipeline throughput (uint8 memmap cache -> float batch with flips)",
                       ["size", "gather img/s", "prepare img/s", "pipeline img/s", "training img/s", "ratio",
                        "target >= 5x"], rows, notes, left=1)
    env = common.environment(str(device), args.threads)
    common.write_json(args.json, {"benchmark": "data_pipeline", "environment": env,
                                  "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
                                               if k != "json"}, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
