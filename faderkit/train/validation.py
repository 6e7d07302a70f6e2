"""Validation during training: reconstruction and swap accuracy on the first validation batches,
and which checkpoint is the best so far."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..codes import blocks, flipped_labels, logits_to_labels
from ..data import prepare_batch


@torch.no_grad()
def validate(model, classifier, split, batch_size: int, batches: int, device) -> dict:
    """Reconstruction MSE and (with a classifier) swap accuracy of each attribute flipped alone."""
    attrs = model.attributes
    was = model.training
    model.eval()
    n = min(len(split), batches * batch_size)
    mse_sum, swap_hits, count = 0.0, torch.zeros(len(attrs)), 0
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(n, start + batch_size))
        x = prepare_batch(split.images(idx.numpy()), device, flip=False)
        y = split.labels[idx].to(device)
        enc = model.encode(x, y)
        mse_sum += F.mse_loss(enc.recon, x, reduction="sum").item() / x[0].numel()
        if classifier is not None:
            target = flipped_labels(y, attrs)
            code = model.code(target)
            for i, s in enumerate(blocks(attrs)):
                pred = logits_to_labels(classifier(enc.swapped(i, code[:, s])), attrs)
                swap_hits[i] += (pred[:, i] == target[:, i]).float().sum().cpu()
        count += len(idx)
    model.train(was)
    out = {"valid_mse": mse_sum / count}
    if classifier is not None:
        acc = (swap_hits / count).tolist()
        out["valid_swap"] = dict(zip([a.name for a in attrs], acc))
        out["valid_swap_mean"] = sum(acc) / len(acc)
    return out


def score(ev: dict, select_by: str) -> float:
    """Higher is better: mean swap accuracy (ties broken by reconstruction), or reconstruction alone
    (select_by last records this too, but takes every evaluation's weights)."""
    if select_by == "swap" and "valid_swap_mean" in ev:
        return ev["valid_swap_mean"] - ev["valid_mse"]
    return -ev["valid_mse"]


def improves(ev: dict, best: float | None, select_by: str) -> bool:
    """Whether this evaluation's weights become best.safetensors: always for select_by last, else when they
    score higher than the best so far."""
    return select_by == "last" or best is None or score(ev, select_by) > best
