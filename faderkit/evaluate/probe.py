"""The latent probe: does a fresh classifier read the attributes from frozen latents E(x)? One probe for each
map the decoder receives (the latent z, and any skip) and each of two ways of reading it: an attribute any of
them carries can reach the output without passing the code, so the report's figure for an attribute is the
map and reader that read it best.

The readers: ``standardised`` (each dimension's mean and standard deviation over the train latents) and
``ranks`` (each dimension's value replaced by its rank among the train latents, as a normal quantile). An
encoder can fool the first without hiding anything: a few latents sent hundreds of times further out than the
rest inflate every dimension's deviation, and the other faces, squashed into a tiny ball, look alike to it.
Ranks do not change under any increasing rescaling of a dimension, so far-out latents squash nothing."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..codes import attribute_loss, logits_to_labels
from ..imageio import to_unit
from ..interfaces import Attribute, AttributeDataset, Split
from .edits import batches


@torch.no_grad()
def encode_split(editor, split: Split, n: int, batch_size: int) -> dict[int, torch.Tensor]:
    """Every map the decoder receives, flattened, for the first ``n`` images: index -> (n, dims)."""
    out: dict[int, list[torch.Tensor]] = {}
    for idx in batches(n, batch_size):
        x = to_unit(split.images(idx).to(editor.device))
        for k, f in editor.model.received(editor.model.encoder(x)).items():
            out.setdefault(k, []).append(f.flatten(1).float().cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def map_name(index: int) -> str:
    """-1 is the latent z; -2 the encoder map before it, and so on."""
    return "z" if index == -1 else f"skip {index}"


def majority_rate(train_labels: torch.Tensor, eval_labels: torch.Tensor, attrs: Sequence[Attribute]) -> list[float]:
    """Per attribute: accuracy on ``eval_labels`` of always answering the train split's most frequent value."""
    out = []
    for i, a in enumerate(attrs):
        mode = int(torch.bincount(train_labels[:, i], minlength=a.size).argmax())
        out.append(float((eval_labels[:, i] == mode).float().mean()))
    return out


READERS = ("standardised", "ranks")


def train_probe(z: torch.Tensor, y: torch.Tensor, attrs: Sequence[Attribute], epochs: int = 20, hidden: int = 128,
                seed: int = 0, reader: str = "standardised") -> tuple[nn.Module, dict]:
    """A fresh MLP on frozen latents, read by ``reader`` (:data:`READERS`, fitted on the latents it trains on); the
    epoch with the best held-out accuracy (10% of ``z``) is kept."""
    if reader not in READERS:
        raise ValueError(f"reader {reader!r}: one of {READERS}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n = len(z)
        perm = torch.randperm(n)
        n_hold = n // 10 if n >= 20 else 0
        hold, fit = perm[:n_hold], perm[n_hold:]
        read = _Standardise(z[fit].mean(0), z[fit].std(0).clamp_min(1e-6)) if reader == "standardised" \
            else _Ranks(z[fit])
        net = nn.Sequential(nn.Linear(z.shape[1], hidden), nn.ReLU(), nn.Dropout(0.2),
                            nn.Linear(hidden, sum(a.size for a in attrs)))
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
        zs = read(z)
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
    probe = nn.Sequential(read, net).eval()
    return probe, {"train_images": len(fit), "held_out_images": int(n_hold), "epochs": epochs, "hidden": hidden}


class _Standardise(nn.Module):
    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, z):
        return (z - self.mean) / self.std


class _Ranks(nn.Module):
    """Each dimension's value as its rank among ``ref``'s values of that dimension, mapped to the standard normal
    quantile of (rank + 0.5) / (n + 1)."""

    def __init__(self, ref: torch.Tensor):
        super().__init__()
        self.register_buffer("sorted", ref.t().contiguous().sort(dim=1).values)  # (dims, n)

    def forward(self, z):
        rank = torch.searchsorted(self.sorted, z.t().contiguous().to(self.sorted.dtype))  # (dims, m), 0..n
        return torch.special.ndtri((rank.to(z.dtype) + 0.5) / (self.sorted.shape[1] + 1)).t()


def probe_section(editor, train: Split, split: Split, p: dict, n: int, batch_size: int, train_limit: int,
                  epochs: int) -> dict:
    """The report's latent_probe: the probe's accuracy on ``split`` beside the majority rate and the run's
    own discriminator (``p``: the main pass, with the split's latents and the discriminator's hits)."""
    attrs = editor.attributes
    m = min(len(train), train_limit)
    maps_train = encode_split(editor, train, m, batch_size)
    y_train, y_eval = train.labels[:m], split.labels[:n]
    maj = majority_rate(y_train, y_eval, attrs)
    disc = (p["disc_hits"] / n).tolist()
    maps, per = {}, {}
    for k, z_train in maps_train.items():  # z first, then the skips from the deepest up
        name = map_name(k)
        maps[name] = {"latent_dim": int(z_train.shape[1]), "gap": {}, "by_reader": {}}
        for reader in READERS:
            probe, info = train_probe(z_train, y_train, attrs, epochs=epochs, reader=reader)
            with torch.no_grad():
                acc = (logits_to_labels(probe(p["latents"][k]), attrs) == y_eval).float().mean(0).tolist()
                acc_train = (logits_to_labels(probe(z_train), attrs) == y_train).float().mean(0).tolist()
            gaps = {a.name: round(acc[i] - maj[i], 6) for i, a in enumerate(attrs)}
            maps[name]["by_reader"][reader] = gaps
            for i, a in enumerate(attrs):
                maps[name]["gap"][a.name] = max(maps[name]["gap"].get(a.name, -1.0), gaps[a.name])
                if a.name not in per or acc[i] - maj[i] > per[a.name]["gap"]:
                    per[a.name] = {"accuracy": round(acc[i], 6), "majority_rate": round(maj[i], 6),
                                   "gap": round(acc[i] - maj[i], 6), "train_accuracy": round(acc_train[i], 6),
                                   "model_discriminator_accuracy": round(disc[i], 6), "map": name,
                                   "reader": reader}
    return {"per_attribute": per, "max_gap": round(max(v["gap"] for v in per.values()), 6),
            "latent_dim": maps["z"]["latent_dim"], "maps": maps, "readers": list(READERS), **info}
