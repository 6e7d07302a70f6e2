"""Loss and metric curves of a run, drawn from its metrics.jsonl into one PNG.

Cheap enough to call at every evaluation step while training, and robust to a log that is being
written: a line cut short (or any line that is not a JSON object) is skipped.
"""

from __future__ import annotations

import math
from pathlib import Path

from . import atomic
from .errors import FaderkitError
from .rundir import read_records

CURVES_FILE = "curves.png"
#: Panels: (title, [(record key, label)], log scale?). Nested dicts (valid_swap) become one line per attribute.
PANELS = (
    ("reconstruction loss (train)", [("loss_rec", "loss_rec")], True),
    ("latent discriminator", [("loss_dis", "loss_dis"), ("loss_adv", "loss_adv")], False),
    ("lambda_E", [("lambda_e", "lambda_e")], False),
    ("validation MSE", [("valid_mse", "valid_mse")], True),
    ("validation swap accuracy", [("valid_swap", None), ("valid_swap_mean", "mean")], False),
    ("images / s", [("images_per_s", "images_per_s")], False),
)


def _plain(text: str) -> str:
    """Text matplotlib shows as written ($ would start mathtext)."""
    return str(text).replace("$", r"\$")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def series(records: list[dict], key: str) -> dict[str, tuple[list[float], list[float]]]:
    """label -> (steps, values) for ``key``; a dict-valued key gives one series per entry."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for rec in records:
        v = rec.get(key)
        items = v.items() if isinstance(v, dict) else [(key, v)]
        for label, value in items:
            if _number(value):
                xs, ys = out.setdefault(label, ([], []))
                xs.append(rec["step"])
                ys.append(value)
    return out


def plot_curves(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Draw the curves of ``run_dir/metrics.jsonl`` into ``out`` (default ``run_dir/curves.png``); returns it."""
    run_dir = Path(run_dir)
    metrics = run_dir / "metrics.jsonl"
    if not run_dir.is_dir():
        raise FaderkitError(f"run directory not found: {run_dir}")
    if not metrics.is_file():
        raise FaderkitError(f"{run_dir} has no metrics.jsonl; is it a faderkit run directory?")
    records = read_records(metrics)
    out = Path(out) if out is not None else run_dir / CURVES_FILE
    if out.suffix.lower() != ".png":
        raise FaderkitError(f"-o {out}: curves are written as PNG; give a name ending in .png")
    if out.exists() and (not out.is_file() or out.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n"):
        raise FaderkitError(f"-o {out} exists and is not a PNG image; it is left alone, choose another name")

    from matplotlib.figure import Figure  # no pyplot: no global backend or state, safe inside a training loop
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig = Figure(figsize=(12, 6.5), dpi=80)
    axes = fig.subplots(2, 3).flatten()
    for ax, (title, keys, log_scale) in zip(axes, PANELS):
        drawn = False
        for key, label in keys:
            for name, (xs, ys) in series(records, key).items():
                style = {"marker": "o", "markersize": 3} if len(xs) < 30 else {}
                if label == "mean":
                    style.update(color="black", linestyle="--")
                ax.plot(xs, ys, label=_plain(label or name), linewidth=1.2, **style)
                drawn = True
                if log_scale and min(ys) <= 0:
                    log_scale = False
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
        if not drawn:
            ax.text(0.5, 0.5, "no records yet", ha="center", va="center", transform=ax.transAxes, color="grey")
            continue
        if log_scale:
            ax.set_yscale("log")
            ax.yaxis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
            for axis_fmt in (ax.yaxis.set_major_formatter, ax.yaxis.set_minor_formatter):
                axis_fmt(FuncFormatter(lambda v, _: f"{v:.3g}"))
        if len(ax.get_lines()) > 1:
            ax.legend(fontsize=7)
    steps = [r["step"] for r in records]
    fig.suptitle(f"{_plain(run_dir.name)}: {len(records)} records" + (f", up to step {max(steps)}" if steps else ""), fontsize=11)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.9, wspace=0.25, hspace=0.4)
    atomic.write(out, lambda f: fig.savefig(f, format="png"))
    return out
