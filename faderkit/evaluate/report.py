"""What each figure of the report means, and report.md: the report for people."""

from __future__ import annotations

import json
from pathlib import Path

from .. import atomic
from ..changemaps import PEAK_SHARE
from ..tiles import value_label
from ..model import OUTPUT_MODES
from .groundtruth import DEFINITION as GT_DEFINITION

DEFINITIONS = {
    "output_modes": "Every edit is measured in each output mode: residual, the image plus the change the decoder "
                    "makes, x + D(z, y') - D(z, y), clamped to [-1, 1]; local, the same change times a mask that "
                    "keeps it where the moved attributes change the training images (the change maps stored in the "
                    "checkpoint, faderkit/changemaps.py; change_maps false: none stored, local is residual) and, "
                    f"there, from {PEAK_SHARE:g} of the image's own largest change up; clean, "
                    "the change without its faint part (each pixel's change shrunk by 4/255); decoded, the decoder's "
                    "image D(z, y') itself (the paper's output). Reconstruction and the latent probe do not depend on "
                    "the mode.",
    "reconstruction": "D(E(x), y) with the image's own labels y, against x, pixels scaled to [0, 1]; mse and psnr "
                      "(10 log10(1/mse)) and ssim (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, mean over "
                      "channels) are computed per image, then averaged over the split.",
    "swap_accuracy": "Each attribute is flipped alone (binary: code [1-a, a] with a = alpha for 0->1 and 1-alpha "
                     "for 1->0; the other attributes keep their labels); the fraction of edited images on which "
                     "the independent classifier predicts the target value, per direction of the flip.",
    "preservation": "For each edited attribute i and each other attribute j: the fraction of images on which the "
                    "classifier's prediction of j on the edited image equals its prediction of j on the original "
                    "image. 'mean' averages over all pairs (i, j != i).",
    "latent_probe": "A fresh MLP (one hidden layer of 128) trained on frozen latents E(x) of the train split "
                    "(epoch chosen on 10% of it held out), accuracy on this split beside the majority rate: the "
                    "accuracy of always answering the train split's most frequent value. Near the majority rate, "
                    "the latent hides the attribute. Two probes read each map: one on the latents standardised "
                    "per dimension (mean, standard deviation), one on each dimension's rank among the train "
                    "latents, which a few far-out latents cannot squash. A decoder with skips receives more than "
                    "z: each map it receives gets its own probes. An attribute's row is the map and reader that "
                    "read it best.",
    "ground_truth": GT_DEFINITION,
}


def write_report(report: dict, out: Path) -> None:
    atomic.write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic.write_text(out / "report.md", markdown(report))
    from ..tracking import log_report
    from .figures import figures

    log_report(report, out, figures)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _num(v, fmt=".2f") -> str:
    return "n/a" if v is None else format(v, fmt)


def markdown(r: dict) -> str:
    ck, sp, al, cl = r["checkpoint"], r["split"], r["alpha"], r["classifier"]
    names = ck["attributes"]
    L = [f"# Evaluation of `{ck['path']}`", "",
         f"Step {ck['step']}, {ck['dataset']} at {ck['image_size']} px, split **{sp['name']}** "
         f"({sp['images']} of {sp['of']} images). Slider for flips: code [1 - a, a] with a = {al['a']} "
         f"(0->1 uses {al['values']['0->1']}, 1->0 uses {al['values']['1->0']}).", "",
         f"Judge: `{cl['path']}` ({cl['source']}; {cl['note']}); mean accuracy on this split "
         f"{_pct(cl['accuracy_mean'])}.", "",
         f"Output modes: {', '.join(OUTPUT_MODES)} (edit's default: **{r['output_modes']['default']}**)"
         + ("" if r["output_modes"].get("change_maps", True) else "; this checkpoint stores no change maps, so local "
            "is residual") + ". "
         f"_{r['output_modes']['definition']}_", ""]
    rc = r["reconstruction"]
    L += ["## Reconstruction", "", "| MSE | PSNR (dB) | SSIM |", "|---|---|---|",
          f"| {rc['mse']:.5f} | {rc['psnr']:.2f} | {rc['ssim']:.4f} |", "", f"_{rc['definition']}_", ""]
    sw, pr = r["swap_accuracy"], r["preservation"]
    L += ["## Swap accuracy and preservation", ""]
    for mode in OUTPUT_MODES:
        per = sw[mode]["per_attribute"]
        dirs = sorted({k for v in per.values() for k in v if k not in ("all", "n")})
        L += [f"**{mode}**", "",
              "| attribute | classifier accuracy | " + " | ".join(f"swap {d}" for d in dirs)
              + " | swap all | preservation when edited |", "|---" * (4 + len(dirs)) + "|"]
        for nm in names:
            v = per[nm]
            L.append(f"| {nm} | {_pct(cl['accuracy'][nm])} | " + " | ".join(_pct(v.get(d)) for d in dirs)
                     + f" | {_pct(v['all'])} | {_pct(pr[mode]['by_edited'][nm])} |")
        L += ["", f"Mean swap accuracy {_pct(sw[mode]['mean'])}; mean preservation {_pct(pr[mode]['mean'])}.", ""]
    L += [f"_{sw['definition']}_", "", f"_{pr['definition']}_", ""]
    lp = r["latent_probe"]
    L += ["## Latent probe", "", "| attribute | probe accuracy | majority rate | gap | reader | probe train accuracy | "
          "model's discriminator |", "|---|---|---|---|---|---|---|"]
    for nm in names:
        v = lp["per_attribute"][nm]
        L.append(f"| {nm} | {_pct(v['accuracy'])} | {_pct(v['majority_rate'])} | {100 * v['gap']:+.1f} pts | "
                 f"{v.get('reader', 'standardised')} | {_pct(v['train_accuracy'])} | "
                 f"{_pct(v['model_discriminator_accuracy'])} |")
    z_read = lp.get("maps", {}).get("z", {}).get("by_reader")
    if z_read:
        L += ["", "The latent z by each reader: " + "; ".join(
            f"{reader} " + ", ".join(f"{nm} {100 * g:+.1f}" for nm, g in gaps.items()) for reader, gaps in z_read.items())
            + " (points above the majority rate)."]
    L += ["", f"Probe trained on {lp['train_images']} latents of {lp['latent_dim']} dimensions "
          f"({lp['held_out_images']} held out to pick the epoch).", ""]
    if len(lp.get("maps", {})) > 1:
        L += ["The decoder receives " + "; ".join(
            f"{k} ({m['latent_dim']} dims: gap " + ", ".join(f"{nm} {100 * g:+.1f}" for nm, g in m["gap"].items()) + ")"
            for k, m in lp["maps"].items()) + ". Each row above is the map that reads the attribute best.", ""]
    L += [f"_{lp['definition']}_", ""]
    L += _ground_truth(r["ground_truth"])
    if "files" in r:
        L += ["## Grids", ""] + [f"- `{f}`" + (" (columns: original, reconstruction, each attribute flipped)"
                                             if k.startswith("samples") else f" (columns: original, reconstruction, "
                                             f"slider {', '.join(value_label(v) for v in r['sweep_values'])})")
                                  for k, f in r["files"].items()] + [""]
    L += ["Seconds: " + ", ".join(f"{k} {v}" for k, v in r["seconds"].items()), ""]
    return "\n".join(L)


def _at_one(slider: dict):
    """The edit's progress at slider 1."""
    if not slider.get("progress_edit") or 1.0 not in slider["values"]:
        return None
    return slider["progress_edit"][slider["values"].index(1.0)]


def _ground_truth(gt: dict) -> list[str]:
    L = ["## Ground truth", ""]
    if not gt.get("available"):
        return L + [gt["note"], ""]
    L += [f"{gt['images']} images. Stored image vs its own render: PSNR {_num(gt['render_vs_original_psnr'])} dB "
          "(JPEG noise: the ceiling for any edit).", ""]
    for mode in OUTPUT_MODES:
        L += [f"**{mode}**", "", "| attribute | flip PSNR | flip L1 | unedited PSNR | monotone | correlation | "
              "progress error | progress at 1 | cosine | ratio | outside |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        sliders = []
        for nm, v in gt[mode]["per_attribute"].items():
            if "error" in v:
                L.append(f"| {nm} | cannot render: {v['error']} | | | | | | | | | |")
                continue
            f, s = v["flip"], v["slider"] or {}
            L.append(f"| {nm} | {_num(f['psnr'])} | {_num(f['l1'], '.4f')} | {_num(f['unedited_baseline']['psnr'])} | "
                     f"{_pct(s.get('monotone_fraction'))} | {_num(s.get('correlation'), '.3f')} | "
                     f"{_num(s.get('progress_error'), '.3f')} | {_num(_at_one(s))} | "
                     f"{_num(s.get('cosine'))} | {_num(s.get('ratio'))} | {_pct(s.get('outside'))} |")
            if s:
                sliders.append((nm, s))
        if sliders:
            L += ["", "Slider values " + ", ".join(value_label(v) for v in sliders[0][1]["values"])
                  + ": mean progress of the edit (of the render), and L1 to the render:", ""]
        for nm, s in sliders:
            prog = ", ".join(f"{_num(a)} ({_num(b)})" for a, b in zip(s["progress_edit"] or [], s["progress_render"] or []))
            L.append(f"- {nm}: progress {prog}; L1 " + ", ".join(_num(x, '.4f') for x in s["l1"]))
        L.append("")
    return L + [f"_{gt['definition']}_", ""]
