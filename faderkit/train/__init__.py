"""Training: the attribute classifier, then the Fader Network's alternating updates.

Each iteration: the latent discriminator P learns to predict y from z = E(x) (adversary.py); then E
and D learn to rebuild x from (z, y) while defeating P, weighted by a lambda_E that rises linearly
from 0 (trainer.py). The encoder runs once per iteration: P's first update reads z detached, the
autoencoder's update reuses the same graph (the paper's algorithm uses one x for both updates).

  classifier.py   the attribute classifier, trained first
  adversary.py    the latent discriminator's updates and the encoder's adversarial term
  objective.py    the objective as components: the loss terms a recipe lists, their set-up, save and restore
  reconstruction.py  the reconstruction losses (pixels, edges) the built-in terms use
  validation.py   validation figures and best-checkpoint selection
  optim.py        the optimisers, one update step for all of them, and freezing a net for a loss
  trainer.py      set-up, the iteration, checkpoints, resume and the loop
"""

from __future__ import annotations

from ..data import open_dataset
from ..recipe import Recipe
from .classifier import accuracy, load_classifier, train_classifier
from .trainer import Trainer, lambda_at, lr_at


def train(recipe: Recipe, run_dir, resume=False, device=None, progress=True, log=print):
    """Train ``recipe`` into ``run_dir``; returns the path of the best checkpoint."""
    return Trainer(recipe, run_dir, resume, device, progress, log).run_training()


__all__ = ["Trainer", "train", "train_classifier", "load_classifier", "accuracy", "open_dataset", "lambda_at", "lr_at"]
