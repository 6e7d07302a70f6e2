"""The comparison report of a sweep: every figure as mean and spread over seeds, against the reference variant.

The spread of a variant is the range of its seeds' values (max - min). A difference from the
reference that is no larger than the larger of the two spreads is marked as noise: another seed
moves the figure that much on its own. With a single seed there is no spread, and nothing can be
called real or noise.
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..evaluate.figures import FAMILIES, decimals, family


def summarise(plan_variants: list[str], results: dict[str, dict], figures_by_run: dict[str, dict],
              targets: list[dict]) -> dict:
    """The report's content: per variant, per figure, the seeds' values, mean, spread and verdict."""
    per_variant: dict[str, dict[str, list[float]]] = {v: {} for v in plan_variants}
    for run, figs in figures_by_run.items():
        variant = results[run]["variant"]
        for name, value in figs.items():
            per_variant[variant].setdefault(name, []).append(value)
    ref = plan_variants[0]
    table: dict[str, dict[str, dict]] = {}
    for v in plan_variants:
        table[v] = {}
        for name, values in per_variant[v].items():
            mean = sum(values) / len(values)
            row = {"values": values, "mean": mean, "spread": max(values) - min(values) if len(values) > 1 else None}
            base = table[ref].get(name) if v != ref else None
            if base is not None:
                row["diff"] = mean - base["mean"]
                spreads = [s for s in (row["spread"], base["spread"]) if s is not None]
                row["verdict"] = ("?" if not spreads else "noise" if abs(row["diff"]) <= max(spreads) else "real")
            table[v][name] = row
    marks = []
    for t in targets:
        for v in ([t["variant"]] if t.get("variant") else plan_variants):
            if v not in table:  # a variant left out of this run of the sweep (--only)
                continue
            row = table[v].get(t["figure"])
            met = None if row is None else ((t.get("min") is None or row["mean"] >= t["min"])
                                            and (t.get("max") is None or row["mean"] <= t["max"]))
            marks.append({**t, "variant": v, "mean": None if row is None else row["mean"],
                          "met": met})
    return {"reference": ref, "variants": plan_variants, "figures": table, "targets": marks,
            "runs": results,
            "definition": "Mean and spread (max - min) over seeds; a difference from the reference no larger than "
                          "the larger spread of the two is noise"}


def _fmt(v, d) -> str:
    return "n/a" if v is None else f"{v:.{d}f}"


def _family_cell(row_figs: dict, fam: str, key: str = "mean") -> str:
    names = [n for n in row_figs if family(n) == fam]
    if not names:
        return "-"
    d = decimals(names[0])
    if fam == "swap":  # 0->1/1->0 pairs per attribute
        attrs = list(dict.fromkeys(n.split(".")[1] for n in names))
        return ", ".join("/".join(_fmt(row_figs.get(f"swap.{a}.{x}", {}).get(key), d) for x in ("0->1", "1->0"))
                         for a in attrs)
    return " / ".join(_fmt(row_figs[n].get(key), d) for n in names)


def markdown(summary: dict, title: str, plots: list[str]) -> str:
    variants, table = summary["variants"], summary["figures"]
    fams = [f for f in FAMILIES if any(family(n) == f[0] for v in variants for n in table[v])]
    L = [f"# Sweep `{title}`", "",
         f"Reference: **{summary['reference']}**. Each cell: the mean over seeds (per attribute in the "
         "recipe's order where a figure has one). " + summary["definition"] + ".", ""]
    L += ["| variant | seeds | " + " | ".join(f"{t} ({u})" if u else t for _, t, u, _ in fams) + " |",
          "|---|---|" + "---|" * len(fams)]
    for v in variants:
        runs = [r for r in summary["runs"].values() if r["variant"] == v]
        ok = sum(r.get("state") == "done" for r in runs)
        L.append(f"| {v} | {ok}/{len(runs)} | " + " | ".join(_family_cell(table[v], f[0]) for f in fams) + " |")
    L += ["", "## Every figure against the reference", "",
          "| figure | variant | seeds | mean | spread | difference | verdict |", "|---|---|---|---|---|---|---|"]
    for fam in fams:
        names = list(dict.fromkeys(n for v in variants for n in table[v] if family(n) == fam[0]))
        for n in names:
            d = decimals(n)
            for v in variants:
                row = table[v].get(n)
                if row is None:
                    continue
                seeds = ", ".join(_fmt(x, d) for x in row["values"])
                diff = "(reference)" if v == summary["reference"] else f"{row['diff']:+.{d}f}"
                L.append(f"| {n} | {v} | {seeds} | {_fmt(row['mean'], d)} | {_fmt(row['spread'], d)} | {diff} | "
                         f"{row.get('verdict', '')} |")
    if summary["targets"]:
        L += ["", "## Targets", "", "| figure | variant | bound | mean | |", "|---|---|---|---|---|"]
        for t in summary["targets"]:
            bound = " and ".join(b for b in (f">= {t['min']}" if t.get("min") is not None else "",
                                             f"<= {t['max']}" if t.get("max") is not None else "") if b)
            mark = {True: "met", False: "**missed**", None: "no figure"}[t["met"]]
            L.append(f"| {t['figure']} | {t['variant']} | {bound} | {_fmt(t['mean'], decimals(t['figure']))} | {mark} |")
    failed = [(n, r) for n, r in summary["runs"].items() if r.get("state") != "done"]
    if failed:
        L += ["", "## Runs that did not finish", ""]
        L += [f"- `{n}`: {r.get('state', 'not run')}" + (f" in {r['stage']}: {r['error']}" if r.get("error") else "")
              for n, r in failed]
    if plots:
        L += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(L) + "\n"


def plot(summary: dict, out: Path) -> list[str]:
    """One PNG per figure family: each variant's seeds as dots and its mean as a bar, per attribute."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants, table = summary["variants"], summary["figures"]
    written = []
    (out / "plots").mkdir(exist_ok=True)
    for fam, title, unit, _ in FAMILIES:
        names = list(dict.fromkeys(n for v in variants for n in table[v] if family(n) == fam))
        if not names:
            continue
        fig, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.5 * len(names) * len(variants)), 3.2))
        width = 0.8 / len(variants)
        for i, v in enumerate(variants):
            for j, n in enumerate(names):
                row = table[v].get(n)
                if row is None:
                    continue
                x = j + (i - (len(variants) - 1) / 2) * width
                ax.bar(x, row["mean"], width * 0.9, color=f"C{i}", label=v if j == 0 else None, alpha=0.6)
                ax.plot([x] * len(row["values"]), row["values"], "k.", ms=4)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.split(".", 1)[-1] for n in names], rotation=30, ha="right", fontsize=7)
        ax.set_ylabel(unit or title)
        ax.set_title(f"{title}: mean over seeds (bars), each seed (dots)", fontsize=8)
        ax.legend(fontsize=7)
        fig.tight_layout()
        name = f"plots/{fam}.png"
        atomic.write(out / name, lambda f, fig=fig: fig.savefig(f, format="png", dpi=90))
        plt.close(fig)
        written.append(name)
    return written


def write(summary: dict, out: Path, title: str) -> Path:
    plots = plot(summary, out)
    atomic.write_text(out / "report.json", json.dumps(summary, indent=1) + "\n")
    atomic.write_text(out / "report.md", markdown(summary, title, plots))
    return out / "report.md"
