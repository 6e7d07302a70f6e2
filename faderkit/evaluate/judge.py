"""Eval's judge: an attribute classifier independent of the run's own (which took part in model
selection): given with --classifier, cached beside the checkpoint, or trained now with another seed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from .. import checkpoint as ckpt
from ..codes import logits_to_labels
from ..editor import _load_weights
from ..errors import FaderkitError
from ..interfaces import Attribute, AttributeDataset
from ..model import build_classifier
from ..recipe import Recipe, as_resolved, validate

#: The run's own classifier is trained with seed offset 0; the evaluation classifier with this one.
EVAL_SEED_OFFSET = 1
EVAL_CLASSIFIER = "eval_classifier.safetensors"


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
    from ..train import train_classifier

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
