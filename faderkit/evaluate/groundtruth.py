"""Edits against ground truth: datasets that can re-render a face with other attributes.

A dataset offers this with ``render(split_name, index, values) -> uint8 (3, S, S)``: row ``index``
of the split redrawn with ``values`` (attribute -> slider value, or value name for n-valued
attributes), its other attributes at the image's own labels. Toy faces render any intensity in
[0, 1], so the slider itself can be checked: does the edit move steadily along the rendered change?
Every figure is measured for each output mode; the renders are shared.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .. import metrics
from ..errors import FaderkitError
from ..imageio import to_unit
from ..interfaces import Split
from ..model import OUTPUT_MODES
from .edits import in_modes, unit

GT_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)
#: A slider step may move the edit back along the rendered change by this fraction and still count as monotone.
MONOTONE_TOLERANCE = 0.02
#: The pixels a true edit changes are grown by this many pixels before the edit's change outside them is counted.
DILATE = 2

DEFINITION = (
    "Edits against the dataset generator's render of the same identity with the edited attribute set to the target "
    "(other attributes at the image's labels), pixels in [0, 1], for each output mode. Full flips: slider 0 or 1 "
    "(n-valued attributes: the next value), whatever --alpha is. 'unedited': the original image against that render, "
    "what doing nothing scores. Slider: progress t(v) = <e(v) - e(0), d> / |d|^2 with d = render(1) - render(0), how "
    "far the edit has moved along the rendered change (the render's own progress is 0 at v = 0 and 1 at v = 1); "
    f"monotone: t never falls by more than {MONOTONE_TOLERANCE} between neighbouring values; correlation: Pearson's "
    "r between the edit's and the render's progress over all images and values; progress error: mean "
    "|t_edit - t_render|. Progress at 1 splits into direction and size, per image: cosine between the edit's change "
    "e(1) - e(0) and d (low: the stroke is blurred or misplaced) and ratio |e(1) - e(0)| / |d| (low: the edit is "
    "weak); progress = cosine x ratio. Outside: the share of the edit's change |e(1) - e(0)| (summed over channels "
    f"and pixels, pooled over images) that falls where the render changes nothing (pixels where render(1) equals "
    f"render(0), after the changed pixels are dilated by {DILATE} px): the change that is not where the attribute is."
)


def can_render(dataset) -> bool:
    return callable(getattr(dataset, "render", None))


def _mean(xs) -> float | None:
    return round(float(np.mean(xs)), 6) if len(xs) else None


def direction_and_size(move: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image, the cosine between ``move`` and the true change ``d`` and the ratio of their norms (progress =
    cosine x ratio), both (B, 3, S, S); for the images ``d`` changes at all, as :func:`progress_along`."""
    m, d = move.flatten(1), d.flatten(1)
    dn, mn = d.norm(dim=1), m.norm(dim=1)
    ok = dn * dn > 1e-8
    cos = (m * d).sum(1)[ok] / (mn[ok] * dn[ok]).clamp_min(1e-12)
    return cos, mn[ok] / dn[ok]


def outside_change(move: torch.Tensor, d: torch.Tensor, dilate: int = DILATE) -> tuple[float, float]:
    """(the change of ``move`` where ``d`` is zero once its support is dilated by ``dilate`` px, all its change),
    summed over channels, pixels and images; both (B, 3, S, S)."""
    support = (d != 0).any(1, keepdim=True).float()
    grown = torch.nn.functional.max_pool2d(support, 2 * dilate + 1, 1, dilate) > 0
    size = move.abs().sum(1, keepdim=True)
    return float(size[~grown].sum()), float(size.sum())


def progress_along(moves: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """How far each image's moves go along its true change ``d``: <move, d> / |d|^2. ``moves``: (B, V, 3, S, S),
    V per image; ``d``: (B, 3, S, S). Returns (B', V) for the B' images ``d`` changes at all (a face the
    attribute does not change says nothing about the slider)."""
    d = d.flatten(1)
    norm = (d * d).sum(1)
    ok = norm > 1e-8
    return (moves.flatten(2) * d[:, None]).sum(2)[ok] / norm[ok, None]


class _Acc:
    """Per-attribute running lists of one output mode: flip figures by direction, slider figures per image."""

    def __init__(self):
        self.flip: dict[str, dict[str, list[float]]] = {}
        self.l1, self.psnr, self.t_edit, self.t_render = [], [], [], []
        self.cos, self.ratio, self.outside, self.change = [], [], 0.0, 0.0

    def add_flip(self, key: str, edit, render, original) -> None:
        d = self.flip.setdefault(key, {"psnr": [], "l1": [], "base_psnr": [], "base_l1": []})
        d["psnr"].append(float(metrics.psnr(edit[None], render[None])))
        d["l1"].append(float(metrics.l1(edit[None], render[None])))
        d["base_psnr"].append(float(metrics.psnr(original[None], render[None])))
        d["base_l1"].append(float(metrics.l1(original[None], render[None])))

    def add_slider(self, e: torch.Tensor, r: torch.Tensor, v0: int, v1: int) -> None:
        """Edits ``e`` and renders ``r`` (B, V, 3, S, S) over the slider values."""
        n = len(e)
        self.l1.append(metrics.l1(e.flatten(0, 1), r.flatten(0, 1)).view(n, -1))
        self.psnr.append(metrics.psnr(e.flatten(0, 1), r.flatten(0, 1)).view(n, -1))
        d = r[:, v1] - r[:, v0]
        self.t_edit.append(progress_along(e - e[:, v0:v0 + 1], d))
        self.t_render.append(progress_along(r - r[:, v0:v0 + 1], d))
        cos, ratio = direction_and_size(e[:, v1] - e[:, v0], d)
        self.cos.append(cos)
        self.ratio.append(ratio)
        out, all_ = outside_change(e[:, v1] - e[:, v0], d)
        self.outside, self.change = self.outside + out, self.change + all_

    def flips(self, field: str) -> list[float]:
        return [v for d in self.flip.values() for v in d[field]]

    def summary(self, values: list[float] | None) -> dict:
        out = {"flip": {
            "psnr": _mean(self.flips("psnr")), "l1": _mean(self.flips("l1")),
            "by_direction": {k: {"psnr": _mean(d["psnr"]), "l1": _mean(d["l1"]), "n": len(d["psnr"])}
                             for k, d in sorted(self.flip.items())},
            "unedited_baseline": {"psnr": _mean(self.flips("base_psnr")), "l1": _mean(self.flips("base_l1"))}}}
        if values is None:
            out["slider"] = None
            return out
        te = torch.cat(self.t_edit) if self.t_edit else torch.zeros(0, len(values))
        tr = torch.cat(self.t_render) if self.t_render else torch.zeros(0, len(values))
        rounded = lambda t: [round(float(v), 6) for v in t]  # noqa: E731
        some = len(te) > 0
        corr = metrics.pearson(te, tr) if some else None
        out["slider"] = {
            "values": values,
            "l1": rounded(torch.cat(self.l1).mean(0)), "psnr": rounded(torch.cat(self.psnr).mean(0)),
            "progress_edit": rounded(te.mean(0)) if some else None,
            "progress_render": rounded(tr.mean(0)) if some else None,
            "monotone_fraction": round(float((te.diff(dim=1) >= -MONOTONE_TOLERANCE).all(1).float().mean()), 6)
            if some else None,
            "correlation": None if corr is None else round(corr, 6),
            "progress_error": round(float((te - tr).abs().mean()), 6) if some else None,
            "cosine": round(float(torch.cat(self.cos).mean()), 6) if some else None,
            "ratio": round(float(torch.cat(self.ratio).mean()), 6) if some else None,
            "outside": round(self.outside / self.change, 6) if self.change > 0 else None,
        }
        return out


def _renders(dataset, split: Split, idx: np.ndarray, values: dict) -> torch.Tensor:
    return torch.stack([dataset.render(split.name, int(k), values) for k in idx]).float() / 255


@torch.no_grad()
def ground_truth(model, dataset, split: Split, n: int, values: Sequence[float] = GT_VALUES,
                 batch_size: int = 100) -> dict:
    """The ``ground_truth`` section of the report, on the first ``n`` images of ``split``."""
    attrs, dev = model.attributes, next(model.parameters()).device
    values = sorted({float(v) for v in values} | {0.0, 1.0})
    v0, v1 = values.index(0.0), values.index(1.0)
    acc = {mode: {a.name: _Acc() for a in attrs} for mode in OUTPUT_MODES}
    failed: dict[str, str] = {}
    own_psnr, rec_l1 = [], []
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        x = to_unit(split.images(idx).to(dev))
        y = split.labels[torch.from_numpy(idx)].to(dev)
        enc = model.encode(x, y)
        rec = enc.recon
        x01 = unit(x).cpu()
        own = _renders(dataset, split, idx, {})
        own_psnr += metrics.psnr(x01, own).tolist()
        rec_l1 += metrics.l1(unit(rec).cpu(), own).tolist()
        for i, a in enumerate(attrs):
            if a.name in failed:
                continue
            src = y[:, i].cpu()
            try:
                if a.binary:
                    edits, renders = {m: [] for m in OUTPUT_MODES}, []
                    for v in values:
                        block = torch.tensor([1.0 - v, v], device=dev)
                        for mode, e in in_modes(x, rec, enc.swapped(i, block), enc.mask(i, block)).items():
                            edits[mode].append(unit(e).cpu())
                        renders.append(_renders(dataset, split, idx, {a.name: v}))
                    r = torch.stack(renders, 1)  # (B, V, 3, S, S)
                    for mode in OUTPUT_MODES:
                        e = torch.stack(edits[mode], 1)
                        acc[mode][a.name].add_slider(e, r, v0, v1)
                        for b in range(len(idx)):
                            t = 1 - int(src[b])
                            vt = v1 if t == 1 else v0
                            acc[mode][a.name].add_flip(f"{a.values[int(src[b])]}->{a.values[t]}", e[b, vt], r[b, vt],
                                                       x01[b])
                else:
                    tgt = (y[:, i] + 1) % a.size
                    block = torch.nn.functional.one_hot(tgt, a.size).float()
                    e = {mode: unit(v).cpu() for mode, v in in_modes(x, rec, enc.swapped(i, block),
                                                                       enc.mask(i, block)).items()}
                    for b, k in enumerate(idx):
                        r = dataset.render(split.name, int(k), {a.name: a.values[int(tgt[b])]}).float() / 255
                        key = f"{a.values[int(src[b])]}->{a.values[int(tgt[b])]}"
                        for mode in OUTPUT_MODES:
                            acc[mode][a.name].add_flip(key, e[mode][b], r, x01[b])
            except FaderkitError as exc:  # the generator cannot draw this attribute this way
                failed[a.name] = str(exc)
    out = {"available": True, "images": n, "render_vs_original_psnr": _mean(own_psnr),
           "reconstruction_vs_render_l1": _mean(rec_l1)}
    for mode in OUTPUT_MODES:
        per = {a.name: {"error": failed[a.name]} if a.name in failed else
               acc[mode][a.name].summary(values if a.binary else None) for a in attrs}
        flips = [v["flip"]["psnr"] for v in per.values() if "flip" in v and v["flip"]["psnr"] is not None]
        out[mode] = {"per_attribute": per, "flip_psnr_mean": _mean(flips),
                     "flip_psnr_min": round(min(flips), 6) if flips else None}
    return out
