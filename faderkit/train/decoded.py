"""The published code's optional losses on images decoded with random target attributes: a patch
discriminator (PatchGAN, real vs decoded) and the frozen attribute classifier."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from ..codes import attribute_loss
from ..interfaces import Attribute
from ..recipe import TrainSection
from .optim import frozen, update


class DecodedLosses:
    def __init__(self, model, decoder, attrs: Sequence[Attribute], train: TrainSection, autocast,
                 patch=None, patch_wrapped=None, patch_opt=None):
        self.model, self.dec, self.attrs, self.t, self.autocast = model, decoder, tuple(attrs), train, autocast
        self.patch, self.patch_w, self.opt_patch = patch, patch_wrapped, patch_opt
        self.classifier = None  # set once the run's classifier is loaded

    @property
    def active(self) -> bool:
        return (self.patch is not None and self.t.lambda_patch > 0) or self.t.lambda_clf > 0

    def __call__(self, x: torch.Tensor, feats, labels: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, dict]:
        """(weighted sum of the active terms, their values); updates the patch discriminator on the way."""
        t, dev = self.t, x.device
        target = torch.stack([torch.randint(a.size, (labels.shape[0],), generator=gen) for a in self.attrs], 1)
        with self.autocast:
            fake = self.dec(feats, self.model.code(target.to(dev)))
        extra, stats = torch.zeros((), device=dev), {}
        if self.patch is not None and t.lambda_patch > 0:
            with self.autocast:
                real_logits, fake_logits = self.patch_w(x).float(), self.patch_w(fake.detach()).float()
            loss_patch = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1 - t.label_smoothing))
                          + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            update(self.opt_patch, loss_patch, self.patch.parameters(), t.clip_grad)
            with frozen(self.patch), self.autocast:
                fooled = self.patch(fake).float()
            extra = extra + t.lambda_patch * F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            stats["loss_patch"] = loss_patch.item()
        if t.lambda_clf > 0:
            with self.autocast:
                loss_clf = attribute_loss(self.classifier(fake).float(), target.to(dev), self.attrs)
            extra = extra + t.lambda_clf * loss_clf
            stats["loss_clf"] = loss_clf.item()
        return extra, stats
