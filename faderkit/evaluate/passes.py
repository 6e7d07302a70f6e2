"""The main pass over a split: reconstruction, and each attribute flipped alone, judged in every output
mode (swap accuracy, preservation); it also keeps every map the decoder receives (the latent z, and
any skip) for the probe."""

from __future__ import annotations

import torch

from .. import metrics
from ..codes import logits_to_labels
from ..imageio import to_unit
from ..interfaces import Split
from ..model import OUTPUT_MODES
from .edits import batches, in_modes, target_block, target_labels, unit
from .judge import Judge


@torch.no_grad()
def main_pass(editor, judge: Judge, split: Split, n: int, alpha: float, batch_size: int) -> dict:
    model, attrs, dev = editor.model, editor.attributes, editor.device
    A = len(attrs)
    sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0}
    clf_hits, disc_hits = torch.zeros(A), torch.zeros(A)
    swap_hits = {m: [torch.zeros(a.size) for a in attrs] for m in OUTPUT_MODES}
    swap_n = [torch.zeros(a.size) for a in attrs]
    agree = {m: torch.zeros(A, A) for m in OUTPUT_MODES}
    latents: dict[int, list[torch.Tensor]] = {}
    for idx in batches(n, batch_size):
        x = to_unit(split.images(idx).to(dev))
        y = split.labels[torch.from_numpy(idx)].to(dev)
        enc = model.encode(x, y)
        feats, rec = enc.feats, enc.recon
        x01, r01 = unit(x), unit(rec)
        sums["mse"] += metrics.mse(r01, x01).sum().item()
        sums["psnr"] += metrics.psnr(r01, x01).sum().item()
        sums["ssim"] += metrics.ssim(r01, x01).sum().item()
        p0 = judge(x)
        clf_hits += (p0 == y).float().sum(0).cpu()
        disc_hits += (logits_to_labels(model.discriminator(model.adversary_input(feats)), attrs) == y).float().sum(0).cpu()
        for i, a in enumerate(attrs):
            tgt = target_labels(y[:, i], a)
            src = y[:, i].cpu()
            swap_n[i] += torch.bincount(src, minlength=a.size).float()
            block = target_block(tgt, a, alpha)
            for mode, edit in in_modes(x, rec, enc.swapped(i, block), enc.mask(i, block)).items():
                p = judge(edit)
                swap_hits[mode][i] += torch.bincount(src, weights=(p[:, i] == tgt).float().cpu(), minlength=a.size)
                agree[mode][i] += (p == p0).float().sum(0).cpu()
        for k, f in model.received(feats).items():
            latents.setdefault(k, []).append(f.flatten(1).float().cpu())
    return {"sums": sums, "n": n, "clf_hits": clf_hits, "disc_hits": disc_hits, "swap_hits": swap_hits,
            "swap_n": swap_n, "agree": agree, "latents": {k: torch.cat(v) for k, v in latents.items()}}


def _rate(hits, n) -> float | None:
    return round(float(hits) / float(n), 6) if n else None


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return round(sum(values) / len(values), 6) if values else None


def swap_section(attrs, p: dict, mode: str) -> dict:
    """Swap accuracy of one output mode, per attribute and direction."""
    per = {}
    for i, a in enumerate(attrs):
        hits, n = p["swap_hits"][mode][i], p["swap_n"][i]
        dirs, counts = {}, {}
        for src in range(a.size):
            key = f"{a.values[src]}->{a.values[int(target_labels(torch.tensor(src), a))]}"
            dirs[key] = _rate(hits[src], n[src])
            counts[key] = int(n[src])
        per[a.name] = {**dirs, "all": _rate(hits.sum(), n.sum()), "n": counts}
    return {"per_attribute": per, "mean": _mean(v["all"] for v in per.values())}


def preservation_section(attrs, p: dict, mode: str) -> dict:
    """How often the judge's prediction of each other attribute survives an edit, in one output mode."""
    names, n, agree = [a.name for a in attrs], p["n"], p["agree"][mode]
    matrix = {ei: {pj: _rate(agree[i, j], n) for j, pj in enumerate(names) if j != i} for i, ei in enumerate(names)}
    pairs = [v for row in matrix.values() for v in row.values()]
    by_kept = {pj: _mean(matrix[ei][pj] for ei in names if ei != pj) for pj in names}
    return {"by_edited": {ei: _mean(row.values()) for ei, row in matrix.items()}, "by_kept": by_kept,
            "matrix": matrix, "mean": _mean(pairs), "note": None if pairs else "one attribute only: nothing else to preserve"}
