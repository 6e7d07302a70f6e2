"""``faderkit eval``: the numbers a researcher can trust, each with its definition beside it.

One pass over a split measures reconstruction, swap accuracy and preservation (judged by an
attribute classifier *independent* of the run's own, which took part in model selection); a
fresh probe on frozen latents tells whether the latent still carries the attributes; datasets
that can re-render a face with other attributes (toy faces) give ground truth for every edit.
Edits are measured in every output mode (residual and decoded).

  judge.py        the independent classifier: given, cached, or trained now with another seed
  edits.py        the flips eval makes, in every output mode
  passes.py       the main pass: reconstruction, swap accuracy, preservation
  probe.py        the latent probe
  groundtruth.py  edits against the generator's renders, and the slider's progress
  grids.py        samples.png and the sweep grids
  report.py       the definitions and report.md
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from .. import atomic
from ..codes import MAX_SLIDER
from ..data import split_with_images
from ..editor import Editor
from ..errors import FaderkitError
from ..sliders import check_sweepable
from ..interfaces import AttributeDataset, Split
from ..model import DEFAULT_MODE, OUTPUT_MODES
from ..recipe import validate
from .groundtruth import GT_VALUES, can_render, ground_truth
from .grids import write_grids
from .judge import EVAL_CLASSIFIER, EVAL_SEED_OFFSET, load_judge
from .passes import main_pass, preservation_section, swap_section
from .probe import encode_split, majority_rate, probe_section, train_probe
from .report import DEFINITIONS, markdown, write_report

SWEEP_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)

__all__ = ["evaluate", "EVAL_CLASSIFIER", "EVAL_SEED_OFFSET", "DEFINITIONS", "SWEEP_VALUES", "encode_split",
           "majority_rate", "train_probe", "markdown", "write_report", "get_split"]


def get_split(dataset: AttributeDataset, name: str) -> Split:
    """``dataset``'s split ``name``, checked as training checks its splits (an unknown or empty one is one line)."""
    return split_with_images(dataset, name, "evaluation reads its images")


def evaluate(checkpoint: str | Path, out_dir: str | Path | None = None, *, split: str = "test", alpha: float = 1.0,
             classifier: str | Path | None = None, device: str = "auto", limit: int | None = None,
             gt_images: int = 100, gt_values: Sequence[float] = GT_VALUES,
             sweep_attributes: Sequence[str] | None = None, sweep_values: Sequence[float] = SWEEP_VALUES,
             grid_rows: int = 8, probe_train_images: int = 5000, probe_epochs: int = 20,
             batch_size: int = 100, data_root: str | Path | None = None, threads: int | None = None,
             progress: bool = False, log: Callable[[str], None] = lambda m: None) -> dict:
    """Evaluate a fader checkpoint on a split; with ``out_dir``, write report.json, report.md and grids there.

    Returns the report (the content of report.json). ``threads`` sets torch's CPU threads for the
    evaluation only (on a crowded machine, 1 can be many times faster than torch's default).
    """
    args = {k: v for k, v in locals().items() if k != "threads"}  # the parameters, nothing else yet
    before = torch.get_num_threads()
    out = Path(out_dir) if out_dir is not None else None
    created = out is not None and not out.exists()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _evaluate(**args)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a failed evaluation leaves no empty folder behind
        raise
    finally:
        torch.set_num_threads(before)


def _evaluate(checkpoint, out_dir, *, split, alpha, classifier, device, limit, gt_images, gt_values, sweep_attributes,
              sweep_values, grid_rows, probe_train_images, probe_epochs, batch_size, data_root, progress, log) -> dict:
    from ..data import open_dataset
    from ..device import pick_device

    t_start = time.perf_counter()
    checkpoint = Path(checkpoint)
    if not 0.5 < alpha <= MAX_SLIDER:
        raise FaderkitError(f"--alpha {alpha}: must be above 0.5 (a flip sets the code to [1 - a, a]; "
                            f"at 0.5 both directions give [0.5, 0.5]) and at most {MAX_SLIDER:g}")
    if data_root is not None and not Path(data_root).expanduser().is_dir():
        raise FaderkitError(f"--data-root {data_root} is not a folder; give the dataset's root")
    if limit is not None and limit < 1:
        raise FaderkitError(f"--limit {limit}: must be at least 1")
    dev = pick_device(device)
    editor = Editor.load(checkpoint, device=dev)
    attrs = editor.attributes
    names = [a.name for a in attrs]
    sweep_attributes = list(sweep_attributes) if sweep_attributes else [a.name for a in attrs if a.binary]
    for name in sweep_attributes:
        check_sweepable(attrs, name)
    recipe = validate(editor.meta["recipe"], f"embedded in {checkpoint}", stored=True)
    if data_root is not None:
        recipe.data.root = Path(data_root).expanduser().resolve()
    dataset = open_dataset(recipe)
    if [a.name for a in dataset.attributes] != names:
        raise FaderkitError(f"the dataset at {dataset.root} has attributes {[a.name for a in dataset.attributes]}, "
                            f"the checkpoint {names}")
    the_split = get_split(dataset, split)
    n = min(len(the_split), limit or len(the_split))
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        try:
            atomic.make_writable_folder(out)
        except OSError as exc:
            raise FaderkitError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    timings = {}

    t = time.perf_counter()
    cache_dirs = [checkpoint.resolve().parent] + ([out] if out is not None else [])
    judge = load_judge(checkpoint, recipe, dataset, attrs, dev, Path(classifier) if classifier else None,
                       cache_dirs, progress, log)
    timings["classifier"] = time.perf_counter() - t

    t = time.perf_counter()
    log(f"evaluating {n} {split} images")
    p = main_pass(editor, judge, the_split, n, alpha, batch_size)
    timings["main_pass"] = time.perf_counter() - t

    clf_acc = (p["clf_hits"] / n).tolist()
    report = {
        "checkpoint": {"path": str(checkpoint), "step": editor.meta.get("step"), "attributes": names,
                       "image_size": editor.image_size, "dataset": recipe.data.name, "data_root": str(recipe.data.root)},
        "split": {"name": split, "images": n, "of": len(the_split)},
        "alpha": {"a": alpha, "code": "[1 - a, a]",
                  "values": {"0->1": alpha, "1->0": round(1.0 - alpha, 6)},
                  "note": "binary attributes; n-valued ones are set to the next value's one-hot"},
        "output_modes": {"modes": list(OUTPUT_MODES), "default": DEFAULT_MODE,
                         "change_maps": editor.model.change_maps is not None,
                         "definition": DEFINITIONS["output_modes"]},
        "classifier": {**judge.info, "accuracy": {nm: round(v, 6) for nm, v in zip(names, clf_acc)},
                       "accuracy_mean": round(sum(clf_acc) / len(clf_acc), 6)},
        "reconstruction": {k: round(v / n, 6) for k, v in p["sums"].items()} | {
            "definition": DEFINITIONS["reconstruction"]},
        "swap_accuracy": {**{m: swap_section(attrs, p, m) for m in OUTPUT_MODES},
                          "definition": DEFINITIONS["swap_accuracy"]},
        "preservation": {**{m: preservation_section(attrs, p, m) for m in OUTPUT_MODES},
                         "definition": DEFINITIONS["preservation"]},
    }
    t = time.perf_counter()
    log("training the latent probe")
    report["latent_probe"] = probe_section(editor, get_split(dataset, "train"), the_split, p, n, batch_size,
                                           probe_train_images, probe_epochs) | {"definition": DEFINITIONS["latent_probe"]}
    timings["latent_probe"] = time.perf_counter() - t

    t = time.perf_counter()
    if can_render(dataset) and gt_images > 0:
        log(f"comparing edits with ground-truth renders ({min(n, gt_images)} images)")
        report["ground_truth"] = ground_truth(editor.model, dataset, the_split, min(n, gt_images), gt_values,
                                              batch_size) | {"definition": DEFINITIONS["ground_truth"]}
    else:
        report["ground_truth"] = {"available": False,
                                  "note": f"the {recipe.data.name} dataset cannot render counterfactuals"
                                  if gt_images > 0 else "turned off (--gt-images 0)"}
    timings["ground_truth"] = time.perf_counter() - t

    if out is not None:
        t = time.perf_counter()
        report["files"] = write_grids(editor, the_split, n, alpha, out, sweep_attributes, sweep_values, grid_rows)
        report["sweep_values"] = list(sweep_values)
        timings["grids"] = time.perf_counter() - t
    report["seconds"] = {k: round(v, 2) for k, v in timings.items()} | {"total": round(time.perf_counter() - t_start, 2)}
    if out is not None:
        write_report(report, out)
    return report
