"""Training speed: iterations (autoencoder updates) per second, against the published code in the same run.

One iteration = one latent-discriminator update and one autoencoder update (the published train.py loop).
Every row is built first, then timed in interleaved windows (row A, row B, ..., row A, row B, ...), so a
busy machine slows all rows alike; the figure is the median window, the best window is shown beside it.
Rows at each size (the paper architecture: 5 layers from 32 maps at 64 px, 6 at 128 and 256 px, max 512,
batch 32, 3 binary attributes, toy faces):

  published-code  the published modules and their own step (--reference DIR: a checkout of its src/;
                  loaded with run-time shims, see published_ref.py); without it, issue 13's figures
                  (measured the same way on this machine) are the baseline, labelled so
  before          faderkit as of e5da8c6: torch's default Adam (per-tensor on CPU), oneDNN as torch calls it
  default         faderkit now: fused Adam; faderkit/cpuconv.py measures each layer shape's paths (NCHW,
                  channels_last, matmul, sub-pixel) at its first call and keeps the fastest
  static          default with cpuconv's fixed rules instead of measuring (matmul for tiny outputs,
                  channels_last for large images with few channels, else NCHW): faderkit before stop 31
  lever rows      default with one thing changed: no-cpuconv, matmul-only, layout-only, torch-adam,
                  foreach-adam, channels-last (whole model),
                  compile (inductor), threads-1, published-schedule (shared_batch=false: its own batch
                  and encoder pass for the discriminator step, as the published code does)
  precision rows  fp32 (train.speed.amp off), bf16 (autocast), bf16-channels-last, bf16-no-cpuconv, fp32-static,
                  bf16-static: the default row
                  is train.speed.amp auto, so it is fp32 or bf16 as this machine's calibration decides
  stop38          default with stop 38's decoder tile (NCHW: a channels_last map concatenated with it is copied
                  back by the next layer) and robust reader's quartiles (torch.quantile's strided sort)
  quickstart      --quickstart: recipes/quickstart.yaml as shipped (64 px, 5 layers, 32..256 maps, mlp
                  discriminator, dis_steps 5 on replayed latents), with e5da8c6's settings, with stop 38's code
                  (quickstart-38), with amp off and
                  bf16 (its precision choice), and with the discriminator's standard reader in place of the
                  robust one; with the implied time of its steps

--profile N prints torch.profiler's top ops over N iterations of published-code, before, default and the precision rows;
FLOPs of one iteration are counted by torch.utils.flop_counter and held against the CPU's peak (cpu_peak.py).

    python benchmarks/train_throughput.py --reference /path/to/FaderNetworks/src --quickstart --profile 3
    python benchmarks/train_throughput.py --sizes 64 --rows before default --windows 9
    python benchmarks/train_throughput.py --quick                 # smoke run: figures meaningless
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py and the others, also when a test loads this file
import common  # noqa: E402
import cpu_peak  # noqa: E402
import published_ref  # noqa: E402

#: issue 13's same-run figures (2 CPU cores, published code timed with its own modules): s per iteration
ISSUE13_PUBLISHED_S = {64: 0.580, 256: 4.639}
OLD = {"optimizer_impl": "torch", "amp": "off"}
ROWS = {  # name: (what it is, train overrides, cpuconv (matmul, layout[, measured]), threads override)
    "before": ("faderkit e5da8c6: torch's default Adam, oneDNN as torch calls it", OLD, (False, False), None),
    "default": ("faderkit now: fused Adam, cpuconv (each layer's path measured)", {}, (True, True), None),
    "static": ("default, cpuconv's fixed rules (not measured)", {}, (True, True, False), None),
    "no-cpuconv": ("default without cpuconv", {}, (False, False), None),
    "matmul-only": ("default, cpuconv's matmul path only", {}, (True, False), None),
    "layout-only": ("default, cpuconv's per-layer layout only", {}, (False, True), None),
    "torch-adam": ("default with torch's default Adam", OLD, (True, True), None),
    "foreach-adam": ("default with foreach Adam", {"optimizer_impl": "foreach"}, (True, True), None),
    "channels-last": ("default + channels_last for the whole model", {"channels_last": True}, (True, True), None),
    "compile": ("default + torch.compile (inductor)", {"compile": True}, (True, True), None),
    "threads-1": ("default on 1 thread", {}, (True, True), 1),
    "published-schedule": ("default, shared_batch=false", {"shared_batch": False}, (True, True), None),
    "fp32": ("default, train.speed.amp off (fp32)", {"amp": "off"}, (True, True), None),
    "bf16": ("default, train.speed.amp bf16 (autocast)", {"amp": "bf16"}, (True, True), None),
    "bf16-channels-last": ("bf16 + channels_last for the whole model", {"amp": "bf16", "channels_last": True},
                           (True, True), None),
    "bf16-no-cpuconv": ("bf16 without cpuconv", {"amp": "bf16"}, (False, False), None),
    "fp32-static": ("fp32, cpuconv's fixed rules", {"amp": "off"}, (True, True, False), None),
    "bf16-static": ("bf16, cpuconv's fixed rules", {"amp": "bf16"}, (True, True, False), None),
}
ROWS["stop38"] = ("default with stop 38's code tile (NCHW) and quartiles (torch.quantile)", {}, (True, True), None)


@contextlib.contextmanager
def stop38():
    """The decoder's code tiled in NCHW whatever its maps' layout, and the robust reader's quartiles by
    torch.quantile: faderkit before stop 39's two changes, to time them in the same run."""
    import torch

    from faderkit_plugins.paper import networks

    saved = networks.in_layout_of, networks.column_quantiles
    networks.in_layout_of = lambda x, extra: extra.to(x.dtype)
    networks.column_quantiles = lambda x, q: torch.quantile(x, torch.tensor(q, device=x.device), dim=0)
    try:
        yield
    finally:
        networks.in_layout_of, networks.column_quantiles = saved


#: rows that also swap code in while they run
PATCHES = {"stop38": stop38, "quickstart-38": stop38}
DEFAULT_ROWS = ["before", "default", "no-cpuconv", "matmul-only", "layout-only", "torch-adam", "channels-last"]
class Row:
    def __init__(self, name, label, step, threads=None, cpuconv=(True, True)):
        self.name, self.label, self.step_fn, self.threads, self.cpuconv = name, label, step, threads, cpuconv
        self.patch = PATCHES.get(name, contextlib.nullcontext)
        self.windows: list[float] = []
        self.flops = None
        self.images_per_iter = 64  # the published loop draws a batch of 32 for each of its two steps

    @contextlib.contextmanager
    def settings(self, default_threads):
        import torch

        from faderkit import cpuconv

        saved = cpuconv.MATMUL, cpuconv.LAYOUT, cpuconv.TUNE
        cpuconv.MATMUL, cpuconv.LAYOUT, cpuconv.TUNE = (*self.cpuconv, True)[:3]
        torch.set_num_threads(self.threads or default_threads)
        try:
            with self.patch():
                yield
        finally:
            cpuconv.MATMUL, cpuconv.LAYOUT, cpuconv.TUNE = saved
            torch.set_num_threads(default_threads)

    def run(self, n, threads):
        with self.settings(threads):
            for _ in range(n):
                self.step_fn()


def faderkit_row(name, recipe_dict, label, cpuconv, threads, tmp):
    import torch

    from faderkit.recipe import validate
    from faderkit.train import Trainer

    recipe = validate(recipe_dict)
    trainer = Trainer(recipe, Path(tempfile.mkdtemp(dir=tmp)), device="cpu", progress=False, log=lambda m: None)
    trainer._setup()
    trainer.model.train()
    gen = torch.Generator().manual_seed(0)

    def step():
        gen.manual_seed(trainer.step)
        trainer._iteration(gen)
        trainer.step += 1

    row = Row(name, label, step, threads, cpuconv)
    row.images_per_iter = common.images_per_iteration(recipe)
    return row


def measure(root, size: int, train: dict, args, device: str = "cpu") -> dict:
    """One faderkit row timed alone (data_pipeline.py uses it): images drawn/s and iterations/s."""
    from faderkit.recipe import validate

    with tempfile.TemporaryDirectory(prefix="faderkit-bench-") as tmp:
        row = faderkit_row("default", paper_dict(root, size, args, **train), "", (True, True), None, tmp)
        t = common.time_iterations(lambda: row.run(1, args.threads), args.warmup, args.windows, args.window_iters,
                                   getattr(args, "window_seconds", 3.0) or 3.0)
    ipi = common.images_per_iteration(validate(paper_dict(root, size, args, **train)))
    return {"images_per_iter": ipi, "images_per_s": ipi / t["s_per_iter"], "ae_updates_per_s": 1 / t["s_per_iter"], **t}


def paper_dict(root, size, args, **train):
    return common.paper_recipe_dict(root, size, args.layers[size], args.batch_size, threads=args.threads, **train)


def quickstart_dict(root, **train):
    """recipes/quickstart.yaml as shipped, on the benchmark's toy faces, with these train settings over its own."""
    import yaml

    q = yaml.safe_load((common.REPO / "recipes" / "quickstart.yaml").read_text())
    q["data"] = {"name": "toyfaces", "root": str(root), "attributes": q["data"]["attributes"], "image_size": 64}
    return common.with_train(q, **train)


def build_rows(size, names, args, root, tmp, mods):
    rows = []
    if mods is not None:
        split = common.open_toyfaces(root, size).split("train")
        import torch

        run = published_ref.PublishedRun(mods, split.images(torch.arange(len(split)).numpy()), split.labels, size,
                                         args.layers[size], common.ATTRIBUTES, args.batch_size)
        rows.append(Row("published-code", "published modules, their own step", run.step))
        if "threads-1" in names:  # like for like with the threads-1 row
            run1 = published_ref.PublishedRun(mods, run.trainer.data.images, split.labels, size, args.layers[size],
                                              common.ATTRIBUTES, args.batch_size)
            rows.append(Row("published-code-threads-1", "published code on 1 thread", run1.step, threads=1))
    for n in names:
        label, train, small, threads = ROWS[n]
        rows.append(faderkit_row(n, paper_dict(root, size, args, **train), label, small, threads, tmp))
    if args.quickstart and size == 64:
        rows.append(faderkit_row("quickstart-before", quickstart_dict(root, **OLD), "the quickstart, e5da8c6 settings",
                                 (False, False), None, tmp))
        rows.append(faderkit_row("quickstart", quickstart_dict(root), "the quickstart as shipped", (True, True), None,
                                 tmp))
        rows.append(faderkit_row("quickstart-38", quickstart_dict(root), "the quickstart, stop 38's tile and quartiles",
                                 (True, True), None, tmp))
        rows.append(faderkit_row("quickstart-static", quickstart_dict(root), "the quickstart, cpuconv's fixed rules",
                                 (True, True, False), None, tmp))
        for amp in ("off", "bf16"):  # its precision choice, timed in the same run
            rows.append(faderkit_row(f"quickstart-{amp}", quickstart_dict(root, amp=amp),
                                     f"the quickstart, train.speed.amp {amp}", (True, True), None, tmp))
        standard = quickstart_dict(root)  # what the robust latent reader costs a step (stop 33)
        standard["model"]["discriminator"].setdefault("params", {})["input_norm"] = "standard"
        rows.append(faderkit_row("quickstart-standard-reader", standard,
                                 "the quickstart, its discriminator reading by mean and deviation", (True, True), None,
                                 tmp))
    return rows


def count_flops(row, threads):
    """The iteration's arithmetic as torch's own kernels do it, whichever path cpuconv takes (the sub-pixel path
    multiplies zero taps too: counted as what it ran, it would flatter the GFLOP/s of the rows that take it)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        saved, row.cpuconv = row.cpuconv, (False, False, False)
        try:
            row.run(1, threads)
        finally:
            row.cpuconv = saved
    return fc.get_total_flops()


def profile(row, n, threads, top):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    with prof(activities=[ProfilerActivity.CPU]) as p:
        row.run(n, threads)
    table = p.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40)
    keep = [c for c in table.splitlines() if c.strip()]
    print(f"\n== profile: {row.name} ({row.label}), {n} iterations, sorted by self CPU time ==")
    print("\n".join(keep))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 256], choices=[64, 128, 256])
    ap.add_argument("--rows", nargs="+", choices=list(ROWS), metavar="NAME", default=DEFAULT_ROWS,
                    help=f"faderkit rows, of: {', '.join(ROWS)} [default: {' '.join(DEFAULT_ROWS)}]")
    ap.add_argument("--reference", type=Path, metavar="DIR",
                    help="the published code's src/ folder (facebookresearch/FaderNetworks), timed in the same run")
    ap.add_argument("--quickstart", action="store_true", help="also time issue 10's quickstart recipe (64 px)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="torch.profiler top ops over N iterations")
    ap.add_argument("--top", type=int, default=12, help="ops per profile")
    ap.add_argument("--layers", nargs="+", default=[], metavar="SIZE=N", help="override a size's layer count")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--count", type=int, default=1000, help="toy faces to generate once and train on")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations per row first")
    ap.add_argument("--windows", type=int, default=7, help="interleaved timed windows per row; the median is reported")
    ap.add_argument("--window-iters", type=int, default=0, help="iterations per window [default: 3 at 64 px, 1 above]")
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 px, batch 8, 200 faces, 1 window of 1")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.sizes, args.batch_size, args.count, args.warmup, args.windows, args.window_iters = [64], 8, 200, 1, 1, 1
    args.layers = {**common.LAYERS, **{int(k): int(v) for k, v in (s.split("=") for s in args.layers)}}
    common.set_threads(args.threads)
    import torch

    mods = None
    if args.reference:
        try:
            mods = published_ref.load(args.reference)
        except published_ref.ReferenceError_ as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    root = common.ensure_toyfaces(args.count)
    peak = cpu_peak.peak(args.threads)
    sgemm = cpu_peak.sgemm_gflops()
    table, results = [], []
    with tempfile.TemporaryDirectory(prefix="faderkit-bench-") as tmp:
        for size in args.sizes:
            common.open_toyfaces(root, size)
            if args.quickstart and size == 64:
                common.open_toyfaces(root, 64, quickstart_dict(root)["data"]["attributes"])
            print(f"{size} px: building {len(args.rows) + (mods is not None)} rows ...", file=sys.stderr, flush=True)
            rows = build_rows(size, args.rows, args, root, tmp, mods)
            for r in rows:
                t0 = time.perf_counter()
                r.run(args.warmup, args.threads)
                print(f"  {r.name}: warm-up {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
                r.flops = count_flops(r, args.threads)
            n = args.window_iters or (3 if size <= 64 else 1)
            for w in range(args.windows):
                for r in rows:
                    t0 = time.perf_counter()
                    r.run(n, args.threads)
                    r.windows.append((time.perf_counter() - t0) / n)
                print(f"  window {w + 1}/{args.windows}: " + " ".join(f"{r.name} {r.windows[-1]:.3f}s" for r in rows),
                      file=sys.stderr, flush=True)
            if args.profile:
                for r in rows:
                    if r.name in ("published-code", "before", "default", "fp32", "bf16", "bf16-channels-last", "quickstart",
                                  "static", "bf16-static"):
                        profile(r, args.profile, args.threads, args.top)
            base = next((r for r in rows if r.name == "published-code"), None)
            base_s = statistics.median(base.windows) if base else ISSUE13_PUBLISHED_S.get(size)
            base_label = "same run" if base else "issue 13's figure (other run)"
            before = next((r for r in rows if r.name == "before"), None)
            base1 = next((r for r in rows if r.name == "published-code-threads-1"), None)
            base1_s = statistics.median(base1.windows) if base1 else None
            for r in rows:
                s = statistics.median(r.windows)
                gf = r.flops / s / 1e9
                res = {"size": size, "row": r.name, "variant": r.name, "label": r.label, "s_per_iter": s,
                       "iters_per_s": 1 / s, "images_per_s": r.images_per_iter / s,
                       "best_window_s": min(r.windows), "windows_s": r.windows, "gflop_per_iter": r.flops / 1e9,
                       "gflops": gf, "share_of_peak": gf / peak["peak_gflops"] if peak["peak_gflops"] else None,
                       "x_published": (base1_s if r.threads == 1 and base1_s else base_s) / s
                       if base_s and not r.name.startswith("quickstart") else None,
                       "x_before": (statistics.median(before.windows) / s) if before else None}
                if r.name.startswith("quickstart"):
                    steps = quickstart_dict(root)["train"]["schedule"]["steps"]
                    res["quickstart_steps"], res["quickstart_train_min"] = steps, steps * s / 60
                results.append(res)
                table.append([f"{size} px", r.name, r.label, common.fmt(1 / s, 3), f"{s * 1e3:,.0f}",
                              f"{min(r.windows) * 1e3:,.0f}", common.fmt(res["x_published"], 2),
                              common.fmt(res["x_before"], 2), common.fmt(r.flops / 1e9, 1), common.fmt(gf, 1),
                              f"{res['share_of_peak']:.0%}" if res["share_of_peak"] else None])
            if not base and base_s:
                table.append([f"{size} px", "published (issue 13)", base_label, common.fmt(1 / base_s, 3),
                              f"{base_s * 1e3:,.0f}", None, "1.00", None, None, None, None])
            del rows
    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    notes = [f"x published: against the published code's median {'in this same run' if mods else 'from issue 13 (another run: not like for like)'}"
             " (1-thread rows: against the published code on 1 thread)",
             f"peak: {peak['how']}; measured fp32 matmul (2048^3, {args.threads} threads): {sgemm:.1f} GFLOP/s",
             f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}, median of {args.windows} "
             f"interleaved windows after {args.warmup} warm-up iterations per row",
             f"load average at the end: {', '.join(f'{v:.2f}' for v in load) if load else '?'} (other processes share "
             "these cores: figures are as measured)"]
    for r in results:
        if "quickstart_train_min" in r:
            notes.append(f"{r['row']}: {r['quickstart_steps']} steps x {r['s_per_iter']:.3f} s = "
                         f"{r['quickstart_train_min']:.1f} min of training iterations (evaluation, samples, "
                         "checkpoints, classifier and data generation not included)")
    common.print_table("training speed: iterations (autoencoder updates) per second, interleaved rows",
                       ["size", "row", "what", "iter/s", "ms/iter", "best ms", "x published", "x before",
                        "GFLOP/iter", "GFLOP/s", "of peak"], table, notes, left=3)
    common.write_json(args.json, {"benchmark": "train_throughput", "environment": common.environment("cpu", args.threads),
                                  "peak": peak, "sgemm_gflops": sgemm, "load_average_end": load,
                                  "settings": {k: str(v) for k, v in vars(args).items() if k != "json"},
                                  "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
