"""Quality benchmark: train the quickstart recipe from scratch, evaluate it, print every figure beside its target.

    python benchmarks/quality.py                      # the real thing: ~10 min of training on 2 CPU cores
    python benchmarks/quality.py --steps 50           # a smoke run (figures meaningless, the table complete)
    python benchmarks/quality.py --run-dir runs/bench --set train.lr=0.001

The targets are issue 3's, for the quickstart model on toy faces, test split. They are never
adjusted to the model: a figure that misses its target is printed as missed. The table is also
written to <run dir>/benchmark.md and the figures to <run dir>/benchmark.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: Issue 3's targets.
SWAP_MIN = 0.90
PRESERVATION_MIN = 0.95
PSNR_MIN = 26.0
GT_FLIP_PSNR_MIN = 22.0
PROBE_MAX_GAP = 0.10
TRAIN_BUDGET_S = 15 * 60


def rows(report: dict) -> list[tuple[str, str, str, bool | None]]:
    """(figure, value, target, met) for every figure of the report; met is None where there is no target."""
    out: list[tuple[str, str, str, bool | None]] = []
    pct = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"  # noqa: E731
    names = report["checkpoint"]["attributes"]
    rc = report["reconstruction"]
    out.append(("reconstruction PSNR", f"{rc['psnr']:.2f} dB", f">= {PSNR_MIN:g} dB", rc["psnr"] >= PSNR_MIN))
    out.append(("reconstruction SSIM", f"{rc['ssim']:.4f}", "-", None))
    out.append(("reconstruction MSE ([0, 1] pixels)", f"{rc['mse']:.5f}", "-", None))
    cl = report["classifier"]
    for n in names:
        out.append((f"judge accuracy {n}", pct(cl["accuracy"][n]), "-", None))
    a = report["alpha"]["a"]
    for n in names:
        for d, v in report["swap_accuracy"]["per_attribute"][n].items():
            if d in ("all", "n"):
                continue
            out.append((f"swap accuracy {n} {d} (a = {a:g})", pct(v), f">= {SWAP_MIN:.0%}",
                        v is not None and v >= SWAP_MIN))
    pr = report["preservation"]
    for n in names:
        out.append((f"preservation when editing {n}", pct(pr["by_edited"][n]), "-", None))
    out.append(("preservation (mean)", pct(pr["mean"]), f">= {PRESERVATION_MIN:.0%}",
                pr["mean"] is not None and pr["mean"] >= PRESERVATION_MIN))
    gt = report["ground_truth"]
    if gt.get("available"):
        for n, v in gt["per_attribute"].items():
            if "error" in v:
                out.append((f"ground-truth PSNR of full flips {n}", f"cannot render: {v['error']}",
                            f">= {GT_FLIP_PSNR_MIN:g} dB", False))
                continue
            f = v["flip"]["psnr"]
            out.append((f"ground-truth PSNR of full flips {n}", f"{f:.2f} dB", f">= {GT_FLIP_PSNR_MIN:g} dB",
                        f is not None and f >= GT_FLIP_PSNR_MIN))
            base = v["flip"]["unedited_baseline"]["psnr"]
            out.append((f"  (unedited original vs that render, {n})", f"{base:.2f} dB", "-", None))
        for n, v in gt["per_attribute"].items():
            s = v.get("slider")
            if not s:
                continue
            prog = " ".join(f"{x:.2f}" for x in s["progress_edit"] or [])
            out.append((f"slider {n}: monotone / corr. / progress at {s['values']}",
                        f"{pct(s['monotone_fraction'])} / {s['correlation'] if s['correlation'] is None else round(s['correlation'], 3)}"
                        f" / {prog}", "-", None))
    else:
        out.append(("ground truth", "not available", f">= {GT_FLIP_PSNR_MIN:g} dB", False))
    for n, v in report["latent_probe"]["per_attribute"].items():
        out.append((f"latent probe {n} (majority {pct(v['majority_rate'])})", pct(v["accuracy"]),
                    f"within {PROBE_MAX_GAP * 100:.0f} pts", abs(v["gap"]) <= PROBE_MAX_GAP))
    return out


def table(report: dict, train_s: float, eval_s: float) -> str:
    lines = ["| figure | value | target | met |", "|---|---|---|---|"]
    for fig, val, target, met in rows(report):
        lines.append(f"| {fig} | {val} | {target} | {'-' if met is None else ('met' if met else 'NOT MET')} |")
    lines.append(f"| training wall time | {train_s:.0f} s | <= {TRAIN_BUDGET_S} s | "
                 f"{'met' if train_s <= TRAIN_BUDGET_S else 'NOT MET'} |")
    sec = report["seconds"]
    lines.append(f"| evaluation wall time | {eval_s:.0f} s (judge {sec.get('classifier', 0):.0f} s, main pass "
                 f"{sec.get('main_pass', 0):.0f} s, probe {sec.get('latent_probe', 0):.0f} s, ground truth "
                 f"{sec.get('ground_truth', 0):.0f} s) | - | - |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", type=Path, default=REPO / "recipes" / "quickstart.yaml")
    ap.add_argument("--data-root", type=Path, default=REPO / "data" / "toyfaces",
                    help="toy faces (generated here on first use) [default: data/toyfaces in the repository]")
    ap.add_argument("--run-dir", type=Path, help="a fresh run directory [default: a new temporary one]")
    ap.add_argument("--steps", type=int, help="override train.steps (a short smoke run)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="any other recipe override, as for faderkit train (repeatable)")
    ap.add_argument("--device", help="auto, cpu, cuda [default: the recipe's]")
    ap.add_argument("--threads", type=int, help="CPU threads for torch, training and evaluation (train.threads)")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--gt-images", type=int, default=100)
    args = ap.parse_args(argv)

    from faderkit.errors import FaderkitError
    from faderkit.evaluate import evaluate
    from faderkit.recipe import load_recipe
    from faderkit.train import train

    overrides = [f"data.root={args.data_root}", *args.overrides]
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.threads is not None:
        overrides.append(f"train.threads={args.threads}")
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="faderkit-quality-")) / "run"
    try:
        recipe = load_recipe(args.recipe, overrides)
        print(f"training {args.recipe.name} ({recipe.train.steps} steps) into {run_dir}", flush=True)
        t0 = time.perf_counter()
        best = train(recipe, run_dir, device=args.device, progress=sys.stderr.isatty(),
                     log=lambda m: print(m, file=sys.stderr, flush=True))
        train_s = time.perf_counter() - t0
        print(f"training took {train_s:.0f} s; evaluating {best} on the test split", flush=True)
        t0 = time.perf_counter()
        report = evaluate(best, run_dir / "eval_test", split="test", alpha=args.alpha, device=args.device or "auto",
                          gt_images=args.gt_images, threads=args.threads, progress=sys.stderr.isatty(),
                          log=lambda m: print(m, file=sys.stderr, flush=True))
        eval_s = time.perf_counter() - t0
    except FaderkitError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    text = table(report, train_s, eval_s)
    missed = sum(1 for *_, met in rows(report) if met is False) + (train_s > TRAIN_BUDGET_S)
    summary = (f"{recipe.train.steps} training steps; training {train_s:.0f} s, evaluation {eval_s:.0f} s "
               f"(wall). Targets missed: {missed}. Report: {run_dir / 'eval_test' / 'report.md'}")
    print(text)
    print(summary)
    (run_dir / "benchmark.md").write_text(f"# Quality benchmark\n\n{text}\n\n{summary}\n")
    (run_dir / "benchmark.json").write_text(json.dumps(
        {"train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1), "steps": recipe.train.steps,
         "targets_missed": missed, "rows": [dict(zip(("figure", "value", "target", "met"), r)) for r in rows(report)]},
        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
