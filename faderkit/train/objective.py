"""The autoencoder's objective as components: the terms a recipe lists (``train.objective.losses``), each a registered
:class:`LossTerm` with its weight, summed in the listed order.

A term may own networks, optimizers and state (the latent adversary owns the discriminator's optimizer and
its replay buffer; the patch critic its network and optimizer): the trainer sets them up, saves, restores
and logs them by looping over the terms, and each iteration reads as the paper's algorithm:

    for term in terms: term.before(step)      # the adversaries' own updates
    step.recon = D(E(x), y)
    loss = sum(weight_i(step) * term_i.loss(step))
    update E and D

A third-party plugin adds a term through the ``faderkit_losses`` hook (see docs/plugins.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from ..changemaps import MAP_IMAGES, attribute_spreads
from ..errors import FaderkitError
from ..interfaces import Attribute, AttributeDataset, Split
from ..recipe import Recipe
from ..train_sections import LossSpec, ObjectiveSection


def objective(o: ObjectiveSection) -> list[LossSpec]:
    """The terms of the autoencoder's loss, in the order they are summed: ``train.objective.losses``, or for a recipe that
    weighs its terms with the flat fields, the terms those describe (reconstruction, edges, the latent adversary,
    the patch and classifier losses), in the order the loop summed them before the terms were components."""
    if o.losses is not None:
        return list(o.losses)
    terms = [LossSpec(name=o.rec_loss)]
    if o.edge_weight:
        terms.append(LossSpec(name="edges", weight=o.edge_weight, params={"kind": o.rec_loss}))
    terms.append(LossSpec(name="adversary", weight=o.lambda_e))
    if o.lambda_patch:
        terms.append(LossSpec(name="patch", weight=o.lambda_patch))
    if o.lambda_clf:
        terms.append(LossSpec(name="classifier", weight=o.lambda_clf))
    return terms



@dataclass
class TermEnv:
    """What a term may use when it is built: the run's recipe, model, data and device, and the trainer's ways of
    wrapping a network (DDP, compile) and of making an Adam optimizer."""

    recipe: Recipe
    model: nn.Module                      # the FaderModel (encoder, decoder, latent discriminator)
    decoder: nn.Module                    # the decoder as the loop calls it (DDP-wrapped, compiled)
    discriminator: nn.Module              # the latent discriminator as the loop calls it
    attributes: tuple[Attribute, ...]
    dataset: AttributeDataset
    train_split: Split
    device: torch.device
    autocast: object
    wrap: Callable[[nn.Module], nn.Module]
    adam: Callable[..., torch.optim.Optimizer]  # adam(params, lr=None)
    _cache: dict = field(default_factory=dict)

    def cached(self, key: str, make: Callable[[], object]):
        """One value per run shared by the terms that need it (e.g. the attributes' change map)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def attribute_spreads(self, images: int = MAP_IMAGES) -> torch.Tensor:
        """:func:`faderkit.changemaps.attribute_spreads` of the train split, read once per run for every term that
        weighs pixels by it (callers must not change it in place)."""
        return self.cached(f"attribute_spreads:{images}", lambda: attribute_spreads(
            self.train_split, self.attributes, self.recipe.data.image_size, images))


class Step:
    """One iteration as the terms see it: the batch, its encoding, the reconstruction, and the random draws."""

    def __init__(self, index: int, x: torch.Tensor, labels: torch.Tensor, feats: list[torch.Tensor],
                 gen: torch.Generator, fresh: Callable[[int], tuple[torch.Tensor, torch.Tensor]], env: TermEnv):
        self.index, self.x, self.labels, self.feats, self.gen, self.fresh = index, x, labels, feats, gen, fresh
        self.y = labels.to(x.device)
        self.recon: torch.Tensor | None = None  # D(E(x), y) in float, set by the trainer after the terms' before()
        self._env, self._random = env, None

    def decoded_random(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(target labels, D(E(x), target)) for targets drawn uniformly per attribute from ``gen``: decoded once
        per step and shared by the terms that judge decoded images (the patch critic, the classifier)."""
        if self._random is None:
            env = self._env
            target = torch.stack([torch.randint(a.size, (self.labels.shape[0],), generator=self.gen)
                                  for a in env.attributes], 1)
            with env.autocast:
                self._random = target, env.decoder(self.feats, env.model.code(target.to(self.x.device)))
        return self._random


class LossTerm:
    """A term of the autoencoder's loss. Subclasses give :meth:`loss`; the rest is optional.

    ``stats`` are logged to metrics.jsonl under their names (tensors are read once per step). A term that owns
    networks returns them from :meth:`modules` (saved under ``<prefix>.``), its optimizers from
    :meth:`optimizers` (saved under their names), and any other state from :meth:`state_tensors`.
    """

    #: Where this term's networks and state sit in a checkpoint (default: the term's registered name).
    prefix: str | None = None
    #: What a non-finite value of :meth:`before`'s stats is called in the error ("the discriminator loss").
    before_name: str = "an adversary's loss"

    def weight_at(self, step: int, weight: float) -> float:
        """The term's weight at ``step``, given its final ``weight`` (the adversary ramps it up)."""
        return weight

    def before(self, step: Step) -> dict[str, torch.Tensor]:
        """This term's own updates before the autoencoder's loss (an adversary's); returns stats to log."""
        return {}

    def loss(self, step: Step) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def idle_stats(self) -> dict:
        """What to log for the term on a step its weight is 0 (it is then not computed)."""
        return {}

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, tensors: dict[str, torch.Tensor], device) -> None:
        pass

    def batches_per_step(self) -> int:
        """Batches of the data stream this term draws each step through ``step.fresh`` (default none)."""
        return 0

    def attach(self, **resources) -> None:
        """Resources the run makes after the terms are built (``classifier``: the run's attribute classifier)."""


@dataclass
class Objective:
    """The terms of a run, their specs (weights), in summing order."""

    terms: list[LossTerm]
    specs: list[LossSpec]

    @classmethod
    def build(cls, env: TermEnv) -> "Objective":
        from ..plugins import registries

        specs = objective(env.recipe.train.objective)
        terms = []
        for spec in specs:
            term = registries()["loss"].create(spec.name, env, params=spec.params)
            if not isinstance(term, LossTerm):
                raise FaderkitError(f"loss '{spec.name}' built a {type(term).__name__}, not a LossTerm")
            term.prefix = term.prefix or spec.name
            terms.append(term)
        return cls(terms, specs)

    def weights(self, step: int) -> list[float]:
        return [t.weight_at(step, s.weight) for t, s in zip(self.terms, self.specs)]

    def before(self, step: Step) -> dict[str, tuple[LossTerm, torch.Tensor]]:
        """Every term's own updates, in order; their stats, each with the term that gave it."""
        out = {}
        for term in self.terms:
            out.update({k: (term, v) for k, v in term.before(step).items()})
        return out

    def total(self, step: Step) -> tuple[torch.Tensor, dict]:
        """The weighted sum of the terms' losses, in the listed order, and their stats."""
        total, stats = None, {}
        for term, w in zip(self.terms, self.weights(step.index)):
            if w == 0:
                stats.update(term.idle_stats())
                continue
            value, s = term.loss(step)
            stats.update(s)
            total = w * value if total is None else total + w * value
        if total is None:
            raise FaderkitError("every term of train.objective.losses weighs 0 at step " f"{step.index}: nothing to train")
        return total, stats

    def batches_per_step(self) -> int:
        return sum(t.batches_per_step() for t in self.terms)

    def optimizers(self):
        for t in self.terms:
            yield from t.optimizers().items()

    def networks(self) -> dict[str, torch.Tensor]:
        """The terms' own networks' weights, by ``<name>.``, for every checkpoint."""
        return {f"{name}.{k}": v for t in self.terms for name, m in t.modules().items()
                for k, v in m.state_dict().items()}

    def train_state(self) -> dict[str, torch.Tensor]:
        """The terms' other state (replay buffers), by ``<prefix>.``, for the checkpoints a run resumes from."""
        return {f"{t.prefix}.{k}": v for t in self.terms for k, v in t.state_tensors().items()}

    def load(self, tensors: dict[str, torch.Tensor], device) -> None:
        from .. import checkpoint as ckpt

        for t in self.terms:
            for name, module in t.modules().items():
                module.load_state_dict(ckpt.unprefixed(name, tensors))
            t.load_state(ckpt.unprefixed(t.prefix, tensors), device)

    def attach(self, **resources) -> None:
        for t in self.terms:
            t.attach(**resources)


def terms_named(specs: Sequence[LossSpec], name: str) -> LossSpec | None:
    return next((s for s in specs if s.name == name), None)
