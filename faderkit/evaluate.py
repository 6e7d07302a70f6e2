"""``faderkit eval``: the numbers a researcher can trust, each with its definition beside it.

One pass over a split measures reconstruction, swap accuracy and preservation (judged by an
attribute classifier *independent* of the run's own, which took part in model selection); a
fresh probe on frozen latents tells whether the latent still carries the attributes; datasets
that can re-render a face with other attributes (toy faces) give ground truth for every edit.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from . import atomic
from . import checkpoint as ckpt
from . import metrics
from .codes import MAX_SLIDER, blocks, labels_to_code, logits_to_labels
from .editor import Editor, _load_weights
from .errors import FaderkitError
from .grids import check_sweepable, tile, value_label
from .groundtruth import DEFINITION as GT_DEFINITION
from .groundtruth import GT_VALUES, can_render, ground_truth
from .imageio import save_image, to_uint8, to_unit
from .interfaces import Attribute, AttributeDataset, Split
from .model import build_classifier
from .recipe import Recipe, as_resolved, validate

#: The run's own classifier is trained with seed offset 0; the evaluation classifier with this one.
EVAL_SEED_OFFSET = 1
EVAL_CLASSIFIER = "eval_classifier.safetensors"
SWEEP_VALUES = (0.0, 0.25, 0.5, 0.75, 1.0)

DEFINITIONS = {
    "reconstruction": "D(E(x), y) with the image's own labels y, against x, pixels scaled to [0, 1]; mse and psnr "
                      "(10 log10(1/mse)) and ssim (Gaussian 11x11, sigma 1.5, K1 0.01, K2 0.03, mean over "
                      "channels) are computed per image, then averaged over the split.",
    "swap_accuracy": "Each attribute is flipped alone (binary: code [1-a, a] with a = alpha for 0->1 and 1-alpha "
                     "for 1->0; the other attributes keep their labels); the fraction of edited images on which "
                     "the independent classifier predicts the target value, per direction of the flip.",
    "preservation": "For each edited attribute i and each other attribute j: the fraction of images on which the "
                    "classifier's prediction of j on the edited image equals its prediction of j on the original "
                    "image. 'mean' averages over all pairs (i, j != i).",
    "latent_probe": "A fresh MLP (one hidden layer of 128) trained on frozen, standardised latents E(x) of the "
                    "train split (epoch chosen on 10% of it held out), accuracy on this split beside the majority "
                    "rate: the accuracy of always answering the train split's most frequent value. Near the "
                    "majority rate, the latent hides the attribute.",
    "ground_truth": GT_DEFINITION,
}


# ---------------------------------------------------------------- loading

def get_split(dataset: AttributeDataset, name: str) -> Split:
    if name not in dataset.split_names:
        raise FaderkitError(f"the dataset at {dataset.root} has no split '{name}'; choose one of: "
                            f"{', '.join(dataset.split_names)}")
    split = dataset.split(name)
    if len(split) == 0:
        raise FaderkitError(f"the {name} split of {dataset.root} is empty")
    return split


class Judge:
    """An attribute classifier answering for the model's attributes, whatever order or superset it knows."""

    def __init__(self, net: nn.Module, known: Sequence[Attribute], attrs: Sequence[Attribute], info: dict):
        self.net, self.known, self.info = net.eval(), tuple(known), info
        names = [a.name for a in known]
        self.columns = [names.index(a.name) for a in attrs]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return logits_to_labels(self.net(x), self.known)[:, self.columns]


def _classifier_from(path: Path, attrs: Sequence[Attribute], image_size: int, device) -> tuple[nn.Module, list, dict]:
    tensors, meta = ckpt.load(path)
    if meta.get("kind") != "classifier":
        raise FaderkitError(f"{path} is a faderkit {meta.get('kind')} checkpoint, not an attribute classifier")
    known = [Attribute.from_json(a) for a in meta["attributes"]]
    by_name = {a.name: a for a in known}
    missing = [a.name for a in attrs if a.name not in by_name]
    if missing:
        raise FaderkitError(f"the classifier {path} does not know attribute(s) {', '.join(missing)} of the checkpoint; "
                            f"it was trained on: {', '.join(by_name) or 'nothing'}")
    differ = [a.name for a in attrs if by_name[a.name].values != a.values]
    if differ:
        raise FaderkitError(f"the classifier {path} gives other values for {', '.join(differ)} than the checkpoint")
    crecipe = validate(meta["recipe"], f"embedded in {path}", stored=True)
    if crecipe.data.image_size != image_size:
        raise FaderkitError(f"the classifier {path} was trained on {crecipe.data.image_size} px images; "
                            f"the checkpoint works at {image_size} px")
    net = build_classifier(crecipe, known)
    _load_weights(net, ckpt.unprefixed("classifier", tensors), path)
    return net.to(device).eval(), known, meta


def _cache_matches(meta: dict, recipe: Recipe) -> bool:
    """A cached evaluation classifier is reused only for the same data and classifier settings."""
    mine = recipe.model_dump(mode="json")
    theirs = as_resolved(meta.get("recipe"))  # both with their params' defaults, however old the cache
    return (meta.get("seed_offset") == EVAL_SEED_OFFSET and theirs.get("data") == mine["data"]
            and theirs.get("classifier") == mine["classifier"])


def load_judge(checkpoint: Path, recipe: Recipe, dataset: AttributeDataset, attrs, device, given: Path | None,
               cache_dirs: Sequence[Path], progress: bool, log: Callable) -> Judge:
    """The evaluation classifier: ``given``, else a cached one, else one trained now (different seed)."""
    own = checkpoint.resolve().parent / "classifier.safetensors"
    if given is not None:
        net, known, meta = _classifier_from(Path(given), attrs, recipe.data.image_size, device)
        same = Path(given).resolve() == own
        return Judge(net, known, attrs, {
            "path": str(given), "source": "given", "seed_offset": meta.get("seed_offset"),
            "independent": not same,
            "note": "the run's own classifier, which took part in model selection: not independent" if same
            else "given with --classifier"})
    for d in cache_dirs:
        path = d / EVAL_CLASSIFIER
        if path.is_file():
            try:
                meta = ckpt.read_meta(path)
            except FaderkitError:
                continue
            if _cache_matches(meta, recipe):
                net, known, _ = _classifier_from(path, attrs, recipe.data.image_size, device)
                return Judge(net, known, attrs, _trained_info(path, "cached", recipe))
    target = next((d / EVAL_CLASSIFIER for d in cache_dirs if d.is_dir() and os.access(d, os.W_OK)), None)
    if target is None:
        raise FaderkitError(f"nowhere to write {EVAL_CLASSIFIER}: {', '.join(map(str, cache_dirs))} not writable; "
                            "pass --classifier or --out")
    from .train import train_classifier

    log(f"training the evaluation classifier ({recipe.classifier.steps} steps, seed offset {EVAL_SEED_OFFSET}) "
        f"into {target}")
    net, _ = train_classifier(recipe, dataset, device, target, progress=progress, seed_offset=EVAL_SEED_OFFSET)
    tensors, meta = ckpt.load(target)
    ckpt.save(target, tensors, {**meta, "seed_offset": EVAL_SEED_OFFSET, "purpose": "evaluation"})
    return Judge(net, dataset.attributes, attrs, _trained_info(target, "trained", recipe))


def _trained_info(path: Path, source: str, recipe: Recipe) -> dict:
    return {"path": str(path), "source": source, "seed_offset": EVAL_SEED_OFFSET, "independent": True,
            "note": f"same architecture ({recipe.classifier.name}) and train split as the run's classifier, "
                    f"trained apart with seed offset {EVAL_SEED_OFFSET} (the run's uses 0)"}


# ---------------------------------------------------------------- codes

def target_labels(y: torch.Tensor, attr: Attribute) -> torch.Tensor:
    """The flip of one attribute: binary 1 - y; n-valued the next value (deterministic)."""
    return 1 - y if attr.binary else (y + 1) % attr.size


def target_block(target: torch.Tensor, attr: Attribute, alpha: float) -> torch.Tensor:
    """Binary: [1 - a, a] with a = alpha towards 1 and 1 - alpha towards 0; n-valued: the one-hot."""
    if not attr.binary:
        return torch.nn.functional.one_hot(target, attr.size).float()
    a = torch.where(target == 1, torch.tensor(alpha), torch.tensor(1.0 - alpha)).to(target.device).float()
    return torch.stack([1 - a, a], 1)


def _with_block(code: torch.Tensor, s: slice, block: torch.Tensor) -> torch.Tensor:
    c = code.clone()
    c[:, s] = block
    return c


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1]."""
    return x.clamp(-1, 1).add(1).div(2)


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield np.arange(start, min(n, start + size))


# ---------------------------------------------------------------- the main pass

@torch.no_grad()
def _main_pass(editor: Editor, judge: Judge, split: Split, n: int, alpha: float, batch_size: int) -> dict:
    model, attrs, dev = editor.model, editor.attributes, editor.device
    A = len(attrs)
    sums = {"mse": 0.0, "psnr": 0.0, "ssim": 0.0}
    clf_hits = torch.zeros(A)
    disc_hits = torch.zeros(A)
    swap_hits = [torch.zeros(a.size) for a in attrs]
    swap_n = [torch.zeros(a.size) for a in attrs]
    agree = torch.zeros(A, A)
    latents = []
    for idx in _batches(n, batch_size):
        x = to_unit(split.images(idx).to(dev))
        y = split.labels[torch.from_numpy(idx)].to(dev)
        feats = model.encoder(x)
        code = labels_to_code(y, attrs)
        rec = model.decoder(feats, code)
        x01, r01 = _unit(x), _unit(rec)
        sums["mse"] += metrics.mse(r01, x01).sum().item()
        sums["psnr"] += metrics.psnr(r01, x01).sum().item()
        sums["ssim"] += metrics.ssim(r01, x01).sum().item()
        p0 = judge(x)
        clf_hits += (p0 == y).float().sum(0).cpu()
        disc_hits += (logits_to_labels(model.discriminator(feats[-1]), attrs) == y).float().sum(0).cpu()
        for i, (a, s) in enumerate(zip(attrs, blocks(attrs))):
            tgt = target_labels(y[:, i], a)
            p = judge(model.decoder(feats, _with_block(code, s, target_block(tgt, a, alpha))))
            hit = (p[:, i] == tgt).float().cpu()
            src = y[:, i].cpu()
            swap_hits[i] += torch.bincount(src, weights=hit, minlength=a.size)
            swap_n[i] += torch.bincount(src, minlength=a.size).float()
            agree[i] += (p == p0).float().sum(0).cpu()
        latents.append(feats[-1].flatten(1).float().cpu())
    return {"sums": sums, "n": n, "clf_hits": clf_hits, "disc_hits": disc_hits, "swap_hits": swap_hits,
            "swap_n": swap_n, "agree": agree, "latents": torch.cat(latents)}


def _rate(hits, n) -> float | None:
    return round(float(hits) / float(n), 6) if n else None


def _swap_section(attrs, p: dict, alpha: float) -> dict:
    per = {}
    for i, a in enumerate(attrs):
        dirs, counts = {}, {}
        for src in range(a.size):
            dst = int(target_labels(torch.tensor(src), a))
            key = f"{a.values[src]}->{a.values[dst]}"
            dirs[key] = _rate(p["swap_hits"][i][src], p["swap_n"][i][src])
            counts[key] = int(p["swap_n"][i][src])
        per[a.name] = {**dirs, "all": _rate(p["swap_hits"][i].sum(), p["swap_n"][i].sum()), "n": counts}
    alls = [v["all"] for v in per.values() if v["all"] is not None]
    return {"per_attribute": per, "mean": round(sum(alls) / len(alls), 6) if alls else None,
            "definition": DEFINITIONS["swap_accuracy"]}


def _preservation_section(attrs, p: dict) -> dict:
    names, n = [a.name for a in attrs], p["n"]
    matrix = {ei: {pj: _rate(p["agree"][i, j], n) for j, pj in enumerate(names) if j != i} for i, ei in enumerate(names)}
    pairs = [v for row in matrix.values() for v in row.values()]
    by_kept = {pj: (round(sum(matrix[ei][pj] for ei in names if ei != pj) / (len(names) - 1), 6) if len(names) > 1 else None)
               for pj in names}
    return {"by_edited": {ei: (round(sum(row.values()) / len(row), 6) if row else None) for ei, row in matrix.items()},
            "by_kept": by_kept, "matrix": matrix,
            "mean": round(sum(pairs) / len(pairs), 6) if pairs else None,
            "note": None if pairs else "one attribute only: nothing else to preserve",
            "definition": DEFINITIONS["preservation"]}


# ---------------------------------------------------------------- latent probe

@torch.no_grad()
def encode_split(editor: Editor, split: Split, n: int, batch_size: int) -> torch.Tensor:
    out = []
    for idx in _batches(n, batch_size):
        x = to_unit(split.images(idx).to(editor.device))
        out.append(editor.model.encoder(x)[-1].flatten(1).float().cpu())
    return torch.cat(out)


def majority_rate(train_labels: torch.Tensor, eval_labels: torch.Tensor, attrs: Sequence[Attribute]) -> list[float]:
    """Per attribute: accuracy on ``eval_labels`` of always answering the train split's most frequent value."""
    out = []
    for i, a in enumerate(attrs):
        mode = int(torch.bincount(train_labels[:, i], minlength=a.size).argmax())
        out.append(float((eval_labels[:, i] == mode).float().mean()))
    return out


def train_probe(z: torch.Tensor, y: torch.Tensor, attrs: Sequence[Attribute], epochs: int = 20, hidden: int = 128,
                seed: int = 0) -> tuple[nn.Module, dict]:
    """A fresh MLP on frozen latents; the epoch with the best held-out accuracy (10% of ``z``) is kept."""
    from .codes import attribute_loss

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n = len(z)
        perm = torch.randperm(n)
        n_hold = n // 10 if n >= 20 else 0
        hold, fit = perm[:n_hold], perm[n_hold:]
        mean, std = z[fit].mean(0), z[fit].std(0).clamp_min(1e-6)
        net = nn.Sequential(nn.Linear(z.shape[1], hidden), nn.ReLU(), nn.Dropout(0.2),
                            nn.Linear(hidden, sum(a.size for a in attrs)))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        zs = (z - mean) / std
        best, best_state, bs = -1.0, None, 128
        for epoch in range(epochs):
            net.train()
            order = fit[torch.randperm(len(fit))]
            for start in range(0, len(order), bs):
                b = order[start:start + bs]
                loss = attribute_loss(net(zs[b]), y[b], attrs)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            if n_hold:
                net.eval()
                with torch.no_grad():
                    acc = float((logits_to_labels(net(zs[hold]), attrs) == y[hold]).float().mean())
                if acc > best:
                    best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
    probe = nn.Sequential(_Standardise(mean, std), net).eval()
    return probe, {"train_images": len(fit), "held_out_images": int(n_hold), "epochs": epochs, "hidden": hidden}


class _Standardise(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, z):
        return (z - self.mean) / self.std


def _probe_section(editor: Editor, dataset: AttributeDataset, split: Split, p: dict, n: int, batch_size: int,
                   train_limit: int, epochs: int) -> dict:
    attrs = editor.attributes
    train = get_split(dataset, "train")
    m = min(len(train), train_limit)
    z_train = encode_split(editor, train, m, batch_size)
    y_train = train.labels[:m]
    probe, info = train_probe(z_train, y_train, attrs, epochs=epochs)
    y_eval = split.labels[:n]
    with torch.no_grad():
        pred = logits_to_labels(probe(p["latents"]), attrs)
        pred_train = logits_to_labels(probe(z_train), attrs)
    acc = (pred == y_eval).float().mean(0).tolist()
    acc_train = (pred_train == y_train).float().mean(0).tolist()
    maj = majority_rate(y_train, y_eval, attrs)
    disc = (p["disc_hits"] / n).tolist()
    per = {a.name: {"accuracy": round(acc[i], 6), "majority_rate": round(maj[i], 6),
                    "gap": round(acc[i] - maj[i], 6), "train_accuracy": round(acc_train[i], 6),
                    "model_discriminator_accuracy": round(disc[i], 6)} for i, a in enumerate(attrs)}
    return {"per_attribute": per, "max_gap": round(max(v["gap"] for v in per.values()), 6),
            "latent_dim": int(z_train.shape[1]), **info, "definition": DEFINITIONS["latent_probe"]}


# ---------------------------------------------------------------- grids

@torch.no_grad()
def flip_rows(editor: Editor, x: torch.Tensor, y: torch.Tensor, alpha: float) -> tuple[torch.Tensor, list[str]]:
    """uint8 (R, 2 + A, 3, S, S): original, reconstruction, each attribute flipped; and the column titles."""
    model, attrs = editor.model, editor.attributes
    feats = model.encoder(x)
    code = labels_to_code(y, attrs)
    cols = [x, model.decoder(feats, code)]
    for i, (a, s) in enumerate(zip(attrs, blocks(attrs))):
        cols.append(model.decoder(feats, _with_block(code, s, target_block(target_labels(y[:, i], a), a, alpha))))
    return to_uint8(torch.stack(cols, 1)).cpu(), ["orig", "recon"] + [a.name for a in attrs]


@torch.no_grad()
def sweep_rows(editor: Editor, x: torch.Tensor, code: torch.Tensor, attribute: str,
               values: Sequence[float]) -> tuple[torch.Tensor, list[str]]:
    """uint8 (R, 2 + V, 3, S, S): original, reconstruction (with ``code``), then ``attribute`` slid over ``values``."""
    model, attrs = editor.model, editor.attributes
    i = check_sweepable(attrs, attribute)
    s = blocks(attrs)[i]
    feats = model.encoder(x)
    cols = [x, model.decoder(feats, code)]
    for v in values:
        blk = torch.tensor([1.0 - v, v], device=x.device).expand(len(x), 2)
        cols.append(model.decoder(feats, _with_block(code, s, blk)))
    return to_uint8(torch.stack(cols, 1)).cpu(), ["orig", "recon"] + [value_label(v) for v in values]


def _write_grids(editor: Editor, split: Split, n: int, alpha: float, out: Path, attributes: Sequence[str],
                 values: Sequence[float], rows: int) -> dict:
    k = min(n, rows)
    idx = np.arange(k)
    x = to_unit(split.images(idx).to(editor.device))
    y = split.labels[torch.from_numpy(idx)].to(editor.device)
    files = {}
    grid, titles = flip_rows(editor, x, y, alpha)
    save_image(tile(grid, titles), out / "samples.png")
    files["samples"] = "samples.png"
    code = labels_to_code(y, editor.attributes)
    for name in attributes:
        grid, titles = sweep_rows(editor, x, code, name, values)
        save_image(tile(grid, titles), out / f"sweep_{name}.png")
        files[f"sweep_{name}"] = f"sweep_{name}.png"
    return files


# ---------------------------------------------------------------- the whole evaluation

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
    from .device import pick_device
    from .train import open_dataset

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
    p = _main_pass(editor, judge, the_split, n, alpha, batch_size)
    timings["main_pass"] = time.perf_counter() - t

    clf_acc = (p["clf_hits"] / n).tolist()
    report = {
        "checkpoint": {"path": str(checkpoint), "step": editor.meta.get("step"), "attributes": names,
                       "image_size": editor.image_size, "dataset": recipe.data.name, "data_root": str(recipe.data.root)},
        "split": {"name": split, "images": n, "of": len(the_split)},
        "alpha": {"a": alpha, "code": "[1 - a, a]",
                  "values": {"0->1": alpha, "1->0": round(1.0 - alpha, 6)},
                  "note": "binary attributes; n-valued ones are set to the next value's one-hot"},
        "classifier": {**judge.info, "accuracy": {nm: round(v, 6) for nm, v in zip(names, clf_acc)},
                       "accuracy_mean": round(sum(clf_acc) / len(clf_acc), 6)},
        "reconstruction": {k: round(v / n, 6) for k, v in p["sums"].items()} | {
            "definition": DEFINITIONS["reconstruction"]},
        "swap_accuracy": _swap_section(attrs, p, alpha),
        "preservation": _preservation_section(attrs, p),
    }
    t = time.perf_counter()
    log("training the latent probe")
    report["latent_probe"] = _probe_section(editor, dataset, the_split, p, n, batch_size, probe_train_images,
                                            probe_epochs)
    timings["latent_probe"] = time.perf_counter() - t

    t = time.perf_counter()
    if can_render(dataset) and gt_images > 0:
        log(f"comparing edits with ground-truth renders ({min(n, gt_images)} images)")
        report["ground_truth"] = ground_truth(editor.model, dataset, the_split, min(n, gt_images), gt_values, batch_size)
    else:
        report["ground_truth"] = {"available": False,
                                  "note": f"the {recipe.data.name} dataset cannot render counterfactuals"
                                  if gt_images > 0 else "turned off (--gt-images 0)"}
    timings["ground_truth"] = time.perf_counter() - t

    if out is not None:
        t = time.perf_counter()
        report["files"] = _write_grids(editor, the_split, n, alpha, out, sweep_attributes, sweep_values, grid_rows)
        report["sweep_values"] = list(sweep_values)
        timings["grids"] = time.perf_counter() - t
    report["seconds"] = {k: round(v, 2) for k, v in timings.items()} | {"total": round(time.perf_counter() - t_start, 2)}
    if out is not None:
        write_report(report, out)
    return report


def write_report(report: dict, out: Path) -> None:
    atomic.write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    atomic.write_text(out / "report.md", markdown(report))


# ---------------------------------------------------------------- report.md

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
         f"{_pct(cl['accuracy_mean'])}.", ""]
    rc = r["reconstruction"]
    L += ["## Reconstruction", "", "| MSE | PSNR (dB) | SSIM |", "|---|---|---|",
          f"| {rc['mse']:.5f} | {rc['psnr']:.2f} | {rc['ssim']:.4f} |", "", f"_{rc['definition']}_", ""]
    sw, pr = r["swap_accuracy"], r["preservation"]
    dirs = sorted({k for v in sw["per_attribute"].values() for k in v if k not in ("all", "n")})
    L += ["## Swap accuracy and preservation", "",
          "| attribute | classifier accuracy | " + " | ".join(f"swap {d}" for d in dirs) + " | swap all | preservation when edited |",
          "|---" * (4 + len(dirs)) + "|"]
    for nm in names:
        v = sw["per_attribute"][nm]
        L.append(f"| {nm} | {_pct(cl['accuracy'][nm])} | " + " | ".join(_pct(v.get(d)) for d in dirs)
                 + f" | {_pct(v['all'])} | {_pct(pr['by_edited'][nm])} |")
    L += ["", f"Mean swap accuracy {_pct(sw['mean'])}; mean preservation {_pct(pr['mean'])}.", "",
          f"_{sw['definition']}_", "", f"_{pr['definition']}_", ""]
    lp = r["latent_probe"]
    L += ["## Latent probe", "", "| attribute | probe accuracy | majority rate | gap | probe train accuracy | "
          "model's discriminator |", "|---|---|---|---|---|---|"]
    for nm in names:
        v = lp["per_attribute"][nm]
        L.append(f"| {nm} | {_pct(v['accuracy'])} | {_pct(v['majority_rate'])} | {100 * v['gap']:+.1f} pts | "
                 f"{_pct(v['train_accuracy'])} | {_pct(v['model_discriminator_accuracy'])} |")
    L += ["", f"Probe trained on {lp['train_images']} latents of {lp['latent_dim']} dimensions "
          f"({lp['held_out_images']} held out to pick the epoch).", "", f"_{lp['definition']}_", ""]
    gt = r["ground_truth"]
    L += ["## Ground truth", ""]
    if not gt.get("available"):
        L += [gt["note"], ""]
    else:
        L += [f"{gt['images']} images. Stored image vs its own render: PSNR {_num(gt['render_vs_original_psnr'])} dB "
              "(JPEG noise: the ceiling for any edit).", "",
              "| attribute | flip PSNR | flip L1 | unedited PSNR | " + "monotone | correlation | progress error |",
              "|---|---|---|---|---|---|---|"]
        sliders = []
        for nm, v in gt["per_attribute"].items():
            if "error" in v:
                L.append(f"| {nm} | cannot render: {v['error']} | | | | | |")
                continue
            f, s = v["flip"], v["slider"] or {}
            L.append(f"| {nm} | {_num(f['psnr'])} | {_num(f['l1'], '.4f')} | {_num(f['unedited_baseline']['psnr'])} | "
                     f"{_pct(s.get('monotone_fraction'))} | {_num(s.get('correlation'), '.3f')} | "
                     f"{_num(s.get('progress_error'), '.3f')} |")
            if s:
                sliders.append((nm, s))
        if sliders:
            L += ["", "Slider values " + ", ".join(value_label(v) for v in sliders[0][1]["values"])
                  + ": mean progress of the edit (of the render), and L1 to the render:", ""]
        for nm, s in sliders:
            prog = ", ".join(f"{_num(a)} ({_num(b)})" for a, b in zip(s["progress_edit"] or [], s["progress_render"] or []))
            L.append(f"- {nm}: progress {prog}; L1 " + ", ".join(_num(x, '.4f') for x in s["l1"]))
        L += ["", f"_{gt['definition']}_", ""]
    if "files" in r:
        L += ["## Grids", ""] + [f"- `{f}`" + (" (columns: original, reconstruction, each attribute flipped)"
                                             if k == "samples" else f" (columns: original, reconstruction, slider "
                                             f"{', '.join(value_label(v) for v in r['sweep_values'])})")
                                  for k, f in r["files"].items()] + [""]
    L += ["Seconds: " + ", ".join(f"{k} {v}" for k, v in r["seconds"].items()), ""]
    return "\n".join(L)
