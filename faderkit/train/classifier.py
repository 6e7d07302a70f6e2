"""The attribute classifier: trained alone before the fader, used by edit (unset attributes), model
selection (swap accuracy) and, trained again with another seed, as eval's independent judge."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import checkpoint as ckpt
from ..codes import attribute_loss, logits_to_labels
from ..data import BatchStream, prepare_batch
from ..errors import FaderkitError, brief
from ..interfaces import AttributeDataset
from ..model import build_classifier
from ..precision import Precision
from ..recipe import Recipe
from .optim import update, with_scaler
from .progress import progress_bar


@torch.no_grad()
def accuracy(classifier, split, attrs, device, batch_size=256, limit: int | None = None) -> list[float]:
    """Per-attribute accuracy of ``classifier`` on (the first ``limit`` images of) a split."""
    classifier.eval()
    n = min(len(split), limit or len(split))
    hits = torch.zeros(len(attrs))
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        x = prepare_batch(split.images(idx.numpy()), device, flip=False)
        pred = logits_to_labels(classifier(x), attrs).cpu()
        hits += (pred == split.labels[idx]).float().sum(0)
    return (hits / n).tolist()


def train_classifier(recipe: Recipe, dataset: AttributeDataset, device, out: Path, progress=True, seed_offset=0,
                     precision: Precision | None = None):
    """Train the attribute classifier alone and save it; returns (module, per-attribute valid accuracy).

    ``precision``: the fader run's (the classifier trained beside it follows ``train.speed.amp``); None = fp32,
    as eval's judge is trained: a measuring instrument the same on every machine."""
    c, attrs = recipe.classifier, dataset.attributes
    precision = precision or Precision("fp32", torch.device(device).type, "")
    autocast = precision.autocast()
    torch.manual_seed(recipe.train.schedule.seed + 1000 + seed_offset)
    net = build_classifier(recipe, attrs).to(device)
    opt = with_scaler(torch.optim.Adam(net.parameters(), lr=c.lr, betas=(0.9, 0.999)), precision.grad_scaler())
    stream = BatchStream(dataset.split("train"), c.batch_size, seed=recipe.train.schedule.seed + 7 + seed_offset)
    gen = torch.Generator().manual_seed(recipe.train.schedule.seed + 11)
    net.train()
    with progress_bar(progress) as bar:
        task = bar.add_task("classifier", total=c.steps, stats="")
        for step in range(c.steps):
            images, labels = stream.batch(step)
            x = prepare_batch(images, device, recipe.train.schedule.flip, gen)
            with autocast:
                logits = net(x)
            loss = attribute_loss(logits.float(), labels.to(device), attrs)
            update(opt, loss, net.parameters(), 0)
            if step % 20 == 0 or step == c.steps - 1:
                bar.update(task, completed=step + 1, stats=f"loss {loss.item():.3f}")
    acc = accuracy(net, dataset.split("valid"), attrs, device)
    meta = {"kind": "classifier", "recipe": recipe.model_dump(mode="json"),
            "attributes": [a.to_json() for a in attrs], "valid_accuracy": dict(zip([a.name for a in attrs], acc)),
            "step": c.steps, "precision": precision.name}
    ckpt.save(out, ckpt.prefixed("classifier", net.state_dict()), meta)
    return net, acc


def load_classifier(path: Path, recipe: Recipe, attrs, device):
    tensors, meta = ckpt.load(path)
    net = build_classifier(recipe, attrs).to(device)
    try:
        net.load_state_dict(ckpt.unprefixed("classifier", tensors))
    except RuntimeError as exc:
        raise FaderkitError(f"{path} does not fit this recipe's classifier ({brief(exc)}); "
                            "use the recipe it was trained with") from None
    net.eval()
    return net, meta
