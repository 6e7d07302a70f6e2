"""The figures a sweep compares, read from each run's eval report.json (the figures of docs/quality.md's tables)."""

from __future__ import annotations

#: Figure families in report order: (prefix, title, unit, how many decimals).
FAMILIES = (
    ("probe_gap", "latent probe gap", "points", 1),
    ("progress", "slider progress at 1 (residual)", "", 2),
    ("recon_psnr", "recon PSNR", "dB", 1),
    ("swap", "swap (residual), 0->1 / 1->0", "%", 0),
    ("swap_mean", "swap accuracy, mean (residual)", "%", 1),
    ("preservation", "preservation, mean (residual)", "%", 1),
    ("flip_psnr", "flip PSNR against the true edit, mean (residual)", "dB", 1),
)


def _d(node, *keys) -> dict:
    """``node[k1][k2]...`` when each is a mapping, else {} (a section may be absent or null)."""
    for k in keys:
        node = node.get(k) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def figures(report: dict) -> dict[str, float]:
    """Flat ``{figure: value}`` of one eval report; a section the report lacks gives no figures
    (n-valued attributes have no slider progress nor per-direction swaps)."""
    out: dict[str, float] = {}
    attrs = _d(report, "checkpoint").get("attributes") or []
    rc = _d(report, "reconstruction")
    if isinstance(rc.get("psnr"), (int, float)):
        out["recon_psnr"] = rc["psnr"]
    probe = _d(report, "latent_probe", "per_attribute")
    for a in attrs:
        if isinstance(_d(probe, a).get("gap"), (int, float)):
            out[f"probe_gap.{a}"] = 100 * probe[a]["gap"]
    gt = _d(report, "ground_truth", "residual")
    for a in attrs:
        slider = _d(gt, "per_attribute", a, "slider")
        values, progress = slider.get("values") or [], slider.get("progress_edit") or []
        if 1.0 in values and len(progress) == len(values):
            out[f"progress.{a}"] = progress[values.index(1.0)]
    if isinstance(gt.get("flip_psnr_mean"), (int, float)):
        out["flip_psnr"] = gt["flip_psnr_mean"]
    swap = _d(report, "swap_accuracy", "residual")
    for a in attrs:
        per = _d(swap, "per_attribute", a)
        for d in ("0->1", "1->0"):
            if isinstance(per.get(d), (int, float)):
                out[f"swap.{a}.{d}"] = 100 * per[d]
    if isinstance(swap.get("mean"), (int, float)):
        out["swap_mean"] = 100 * swap["mean"]
    pres = _d(report, "preservation", "residual")
    if isinstance(pres.get("mean"), (int, float)):
        out["preservation"] = 100 * pres["mean"]
    return out


def family(figure: str) -> str:
    return figure.split(".", 1)[0]


def decimals(figure: str) -> int:
    return next((d for p, _, _, d in FAMILIES if p == family(figure)), 2)
