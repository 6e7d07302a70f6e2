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


def figures(report: dict) -> dict[str, float]:
    """Flat ``{figure: value}`` of one eval report; a section the report lacks gives no figures."""
    out: dict[str, float] = {}
    attrs = report.get("checkpoint", {}).get("attributes", [])
    rc = report.get("reconstruction", {})
    if "psnr" in rc:
        out["recon_psnr"] = rc["psnr"]
    probe = report.get("latent_probe", {}).get("per_attribute", {})
    for a in attrs:
        if a in probe and probe[a].get("gap") is not None:
            out[f"probe_gap.{a}"] = 100 * probe[a]["gap"]
    gt = report.get("ground_truth", {}).get("residual", {})
    for a in attrs:
        slider = gt.get("per_attribute", {}).get(a, {}).get("slider", {})
        values, progress = slider.get("values", []), slider.get("progress_edit", [])
        if 1.0 in values and len(progress) == len(values):
            out[f"progress.{a}"] = progress[values.index(1.0)]
    if gt.get("flip_psnr_mean") is not None:
        out["flip_psnr"] = gt["flip_psnr_mean"]
    swap = report.get("swap_accuracy", {}).get("residual", {})
    for a in attrs:
        per = swap.get("per_attribute", {}).get(a, {})
        for d in ("0->1", "1->0"):
            if per.get(d) is not None:
                out[f"swap.{a}.{d}"] = 100 * per[d]
    if swap.get("mean") is not None:
        out["swap_mean"] = 100 * swap["mean"]
    pres = report.get("preservation", {}).get("residual", {})
    if pres.get("mean") is not None:
        out["preservation"] = 100 * pres["mean"]
    return out


def family(figure: str) -> str:
    return figure.split(".", 1)[0]


def decimals(figure: str) -> int:
    return next((d for p, _, _, d in FAMILIES if p == family(figure)), 2)
