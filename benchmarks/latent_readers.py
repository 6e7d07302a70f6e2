"""Which reader reads the attributes from a checkpoint's latent? eval's probe against the run's own discriminator.

    python benchmarks/latent_readers.py runs/quickstart/best.safetensors [--train-images 8000] [--seed 0]

Every reader is trained to convergence on the frozen latents z = E(x) of the train split (eval mode) and scored on
the test split as a gap in points above the majority answer, as `faderkit eval`'s latent probe is:

- rank probe:      eval's probe (an MLP, 128 hidden) on each dimension's rank among the train latents;
- linear on ranks: a linear model on the same ranks;
- own D:           the run's own latent discriminator as trained (eval mode);
- fresh D:         a fresh copy of the run's discriminator (its reader and MLP, weights reset) trained on the frozen
                   latents with the run's batch size and discriminator learning rate;
- fresh D, slow:   the same with batch 64 and a quarter of that learning rate, for longer.

If the probes read an attribute and a fresh copy of the discriminator cannot, even with all the time it wants, the
discriminator's reader is what lets the encoder keep it (docs/quality.md, tenth round); if the fresh copy reads it
and the run's own does not, the discriminator lags the encoder.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common.py, also when a test loads this file

from common import add_checkpoint_args, open_checkpoint  # noqa: E402

from faderkit.codes import attribute_loss, logits_to_labels  # noqa: E402
from faderkit.editor import Editor  # noqa: E402
from faderkit.evaluate import get_split  # noqa: E402
from faderkit.evaluate.probe import _Ranks, encode_split, majority_rate, train_probe  # noqa: E402


def fit(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attrs, lr: float, batch: int, epochs: int,
        betas=(0.9, 0.999), weight_decay: float = 0.0) -> torch.nn.Module:
    opt = torch.optim.Adam(net.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    for _ in range(epochs):
        net.train()
        for b in torch.randperm(len(x)).split(batch):
            if len(b) < 2:
                continue
            loss = attribute_loss(net(x[b]), y[b], attrs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def fresh(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with every parameter and running statistic reset."""
    out = copy.deepcopy(module)
    for m in out.modules():
        if m is not out and hasattr(m, "reset_parameters"):
            m.reset_parameters()
        if hasattr(m, "batches_seen"):  # the robust reader: its first batch sets its running quartiles again
            m.batches_seen.zero_()
    return out


def readings(editor: Editor, recipe, dataset, train_images: int = 8000, seed: int = 0) -> dict[str, list[float]]:
    """Each reader's gap per attribute (accuracy on the test split minus the majority rate), by reader name;
    ``recipe``: the checkpoint's, validated (its discriminator's batch size and learning rate)."""
    torch.manual_seed(seed)
    attrs = editor.attributes
    train, test = get_split(dataset, "train"), get_split(dataset, "test")
    m = min(len(train), train_images)
    z_train = encode_split(editor, train, m, 128)[-1]
    z_test = encode_split(editor, test, len(test), 128)[-1]
    y_train, y_test = train.labels[:m], test.labels[:len(test)]
    majority = majority_rate(y_train, y_test, attrs)
    shape = tuple(editor.model.encoder.latent_shape)
    own = editor.model.discriminator.eval()
    sched, adv = recipe.train.schedule, recipe.train.adversary

    def gaps(reader) -> list[float]:
        with torch.no_grad():
            hits = logits_to_labels(reader(z_test), attrs) == y_test
        return [a - b for a, b in zip(hits.float().mean(0).tolist(), majority)]

    ranks = _Ranks(z_train)
    r_train = ranks(z_train)
    rows = {}
    probe, _ = train_probe(z_train, y_train, attrs, reader="ranks", seed=seed)
    rows["rank probe (eval's)"] = gaps(probe)
    linear = fit(torch.nn.Linear(r_train.shape[1], sum(a.size for a in attrs)), r_train, y_train, attrs, 1e-3, 128, 20,
                 weight_decay=1e-4)
    rows["linear on ranks"] = gaps(lambda z: linear(ranks(z)))
    rows["own D (as trained)"] = gaps(lambda z: own(z.view(-1, *shape)))
    lr, batch = adv.dis_lr or sched.lr, sched.batch_size
    z_shaped = z_train.view(-1, *shape)
    for name, (lr_k, batch_k, epochs) in {"fresh D": (lr, batch, 6), "fresh D, slow": (lr / 4, 64, 15)}.items():
        d = fit(fresh(own), z_shaped, y_train, attrs, lr_k, batch_k, epochs, betas=(sched.beta1, 0.999))
        rows[f"{name} (lr {lr_k:g}, batch {batch_k}, {epochs} epochs)"] = gaps(lambda z: d(z.view(-1, *shape)))
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_checkpoint_args(ap)
    ap.add_argument("--train-images", type=int, default=8000, help="train latents the readers fit (default 8000)")
    ap.add_argument("--seed", type=int, default=0, help="the readers' seed")
    args = ap.parse_args(argv)
    editor, recipe, dataset = open_checkpoint(args)
    rows = readings(editor, recipe, dataset, args.train_images, args.seed)
    print(f"{args.checkpoint}: gap in points above the majority answer on the test split, "
          + " / ".join(a.name for a in editor.attributes))
    width = max(len(k) for k in rows)
    for k, v in rows.items():
        print(f"  {k:<{width}}  " + " / ".join(f"{100 * g:.0f}" for g in v))


if __name__ == "__main__":
    main()
