"""The published implementation's own training step (facebookresearch/FaderNetworks), timed on this machine.

Nothing of it is in this repository (its licence is CC BY-NC): ``--reference DIR`` points at a checkout
of its ``src/`` folder. Its 2017 code does not import on current torch as is, so the files are copied to a
temporary folder and patched there at run time; every patch is listed in SHIMS, each keeps what the step
computes, and a reference that does not match them is refused with the reason. The patches:

- ``.cuda()`` becomes ``.to(<device>)`` (CPU runs);
- ``loss.data[0]`` becomes ``loss.item()`` (0-dim tensors can no longer be indexed);
- the latent discriminator's encoder pass, ``Variable(x, volatile=True)`` in 2017, runs under
  ``torch.no_grad()`` as volatile did then (``volatile`` is ignored today, which would build an unused graph);
- ``inspect.getargspec`` (removed in Python 3.11) becomes ``inspect.getfullargspec``.

One iteration is what its ``train.py`` loop does with default flags: ``lat_dis_step()`` (its own batch of
32, encoder without gradients), ``autoencoder_step()`` (a new batch of 32), ``step()``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from pathlib import Path

FILES = ("__init__.py", "model.py", "training.py", "utils.py", "loader.py", "logger.py")
# (file, old, new, at least how many times old must occur)
SHIMS = (
    ("loader.py", ".cuda()", ".to(__fader_device__)", 2),
    ("model.py", "Variable(shift.cuda())", "shift.to(__fader_device__)", 1),
    ("model.py", ".cuda()", ".to(__fader_device__)", 0),
    ("training.py", ".data[0]", ".item()", 4),
    ("training.py", "enc_outputs = self.ae.encode(Variable(batch_x.data, volatile=True))",
     "with torch.no_grad(): enc_outputs = self.ae.encode(batch_x.data)", 1),
    ("training.py", ".cuda()", ".to(__fader_device__)", 0),
    ("utils.py", "inspect.getargspec(", "inspect.getfullargspec(", 1),
)
PACKAGE = "fader_published"


class ReferenceError_(Exception):
    """The reference folder is missing a file or differs from the code these shims were written for."""


def load(src_dir: Path, device: str = "cpu"):
    """Import the published ``src`` package from a patched temporary copy; returns (model, training, loader)."""
    src_dir = Path(src_dir)
    if (src_dir / "src" / "model.py").is_file():  # the repository root was given
        src_dir = src_dir / "src"
    missing = [f for f in FILES if not (src_dir / f).is_file()]
    if missing:
        raise ReferenceError_(f"{src_dir} is not the published code's src/ folder (missing {', '.join(missing)})")
    texts = {f: (src_dir / f).read_text() for f in FILES}
    for f, old, new, least in SHIMS:
        n = texts[f].count(old)
        if n < least:
            raise ReferenceError_(f"{src_dir / f}: expected '{old}' at least {least} time(s), found {n}; "
                                  "this is not the published version these shims were written for")
        texts[f] = texts[f].replace(old, new)
    tmp = Path(tempfile.mkdtemp(prefix="faderkit-published-")) / PACKAGE
    tmp.mkdir()
    for f, text in texts.items():
        if f != "__init__.py":
            text = f"__fader_device__ = {device!r}\n" + text
        (tmp / f).write_text(text)
    sys.path.insert(0, str(tmp.parent))
    try:
        return tuple(importlib.import_module(f"{PACKAGE}.{m}") for m in ("model", "training", "loader"))
    finally:
        sys.path.remove(str(tmp.parent))


def params(image_size: int, n_layers: int, attributes, batch_size: int = 32, **over) -> argparse.Namespace:
    """Its train.py defaults (6 layers from 32 maps, max 512, Adam 2e-4 beta1 0.5, clip 5, lambda 1e-4 over
    500k iterations, h-flips), for binary ``attributes`` at ``image_size``."""
    p = dict(img_sz=image_size, img_fm=3, attr=[(a, 2) for a in attributes], instance_norm=False, init_fm=32,
             max_fm=512, n_layers=n_layers, n_skip=0, deconv_method="convtranspose", hid_dim=512, dec_dropout=0.0,
             lat_dis_dropout=0.3, n_lat_dis=1, n_ptc_dis=0, n_clf_dis=0, smooth_label=0.2, lambda_ae=1.0,
             lambda_lat_dis=1e-4, lambda_ptc_dis=0.0, lambda_clf_dis=0.0, lambda_schedule=500000, v_flip=False,
             h_flip=True, batch_size=batch_size, ae_optimizer="adam,lr=0.0002", dis_optimizer="adam,lr=0.0002",
             clip_grad_norm=5.0, ae_reload="", lat_dis_reload="", ptc_dis_reload="", clf_dis_reload="")
    p.update(over)
    p["n_attr"] = sum(n for _, n in p["attr"])
    return argparse.Namespace(**p)


class PublishedRun:
    """The published AutoEncoder, LatentDiscriminator and Trainer on in-memory uint8 images (as its loader
    keeps them); ``step()`` is one iteration of its train.py loop."""

    def __init__(self, modules, images, labels, image_size: int, n_layers: int, attributes, batch_size: int = 32,
                 device: str = "cpu"):
        import torch

        model, training, loader = modules
        self.params = params(image_size, n_layers, attributes, batch_size)
        onehot = torch.cat([torch.nn.functional.one_hot(labels[:, i], 2) for i in range(labels.shape[1])], 1).float()
        data = loader.DataSampler(images, onehot, self.params)
        ae = model.AutoEncoder(self.params).to(device)
        lat_dis = model.LatentDiscriminator(self.params).to(device)
        self.trainer = training.Trainer(ae, lat_dis, None, None, data, self.params)
        self.n = 0

    def modules(self):
        return self.trainer.ae, self.trainer.lat_dis

    def step(self) -> None:
        self.trainer.lat_dis_step()
        self.trainer.autoencoder_step()
        self.trainer.step(self.n)
        self.n += 1
