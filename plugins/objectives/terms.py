"""The built-in loss terms. Each reads one iteration's :class:`~faderkit.train.objective.Step` and gives
``(loss, stats)``; the adversaries also update their own networks first (``before``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from faderkit.changemaps import change_maps
from faderkit.codes import attribute_loss
from faderkit.errors import FaderkitError
from faderkit.model import build_patch_discriminator
from faderkit.train.adversary import LatentAdversary, warmed_up
from faderkit.train.objective import LossTerm, Step, TermEnv
from faderkit.train.optim import frozen, update
from faderkit.train.reconstruction import coarse_loss, edge_loss, reconstruction_loss


class Pixels(LossTerm):
    """The reconstruction D(E(x), y) against x, pixel by pixel."""

    def __init__(self, kind: str):
        self.kind = kind

    def loss(self, step: Step):
        value = reconstruction_loss(step.recon, step.x, self.kind)
        return value, {"loss_rec": value}


class Edges(LossTerm):
    """The same loss on the neighbouring-pixel differences: a thin line drawn a pixel off costs twice its pixels."""

    def __init__(self, env: TermEnv, kind: str = "mse"):
        self.kind = kind

    def loss(self, step: Step):
        value = edge_loss(step.recon, step.x, self.kind)
        return value, {"loss_edges": value}


class Coarse(LossTerm):
    """The same loss on the images averaged over blocks: colours and shading weighed again beside a heavy edges'
    term, which is blind to them (docs/quality.md, fifteenth round)."""

    def __init__(self, env: TermEnv, kind: str = "mse", pool: int = 4):
        self.kind, self.pool = kind, pool

    def loss(self, step: Step):
        value = coarse_loss(step.recon, step.x, self.pool, self.kind)
        return value, {"loss_coarse": value}


class AdversaryTerm(LossTerm):
    """The latent discriminator's ``dis_steps`` updates, then the encoder's term against it (``adv_objective``),
    weighted by lambda_E raised linearly over ``lambda_warmup`` steps: the settings of ``train.adversary``."""

    before_name = "the discriminator loss"

    def __init__(self, env: TermEnv):
        t, clip = env.recipe.train.adversary, env.recipe.train.schedule.clip_grad
        self.model, self.t = env.model, t
        self.adversary = LatentAdversary(env.model.discriminator, env.discriminator, env.attributes, t, clip,
                                         env.adam(env.model.discriminator.parameters(), lr=t.dis_lr), env.autocast)
        self.lam = 0.0

    def weight_at(self, step: int, weight: float) -> float:
        self.lam = warmed_up(weight, step, self.t.lambda_warmup)
        return self.lam

    def batches_per_step(self) -> int:
        fresh = 1 if self.t.dis_replay else self.t.dis_steps
        return fresh - 1 if self.t.shared_batch else fresh

    def before(self, step: Step):
        first = (self.model.adversary_input(step.feats).detach(), step.y) if self.t.shared_batch else step.fresh(0)
        return {"loss_dis": self.adversary.update(first, step.fresh, step.gen)}

    def loss(self, step: Step):
        value = self.adversary.encoder_loss(self.model.adversary_input(step.feats), step.labels, step.gen)
        return value, {"loss_adv": value, "lambda_e": self.lam}

    def idle_stats(self) -> dict:
        return {"loss_adv": 0.0, "lambda_e": 0.0}

    def optimizers(self):
        return {"opt_dis": self.adversary.opt}

    def state_tensors(self):
        return self.adversary.state_tensors()

    def load_state(self, tensors, device) -> None:
        self.adversary.load_state(tensors, device)


class PatchTerm(LossTerm):
    """A PatchGAN critic: updated on real images against images decoded with random attributes (the 'real' label
    smoothed by train.objective.label_smoothing); the decoder's term is the critic fooled."""

    before_name = "the patch critic's loss"

    def __init__(self, env: TermEnv):
        train = env.recipe.train
        self.net = build_patch_discriminator(env.recipe, env.attributes)
        if self.net is None:
            raise FaderkitError("the patch loss needs model.patch_discriminator, e.g. {name: patch}")
        self.net.to(env.device, memory_format=torch.channels_last if train.speed.channels_last else torch.preserve_format)
        self.wrapped, self.opt = env.wrap(self.net), env.adam(self.net.parameters())
        self.smoothing, self.clip, self.autocast = train.objective.label_smoothing, train.schedule.clip_grad, env.autocast

    def before(self, step: Step):
        _, fake = step.decoded_random()
        with self.autocast:
            real_logits, fake_logits = self.wrapped(step.x).float(), self.wrapped(fake.detach()).float()
        loss = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1 - self.smoothing))
                + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
        update(self.opt, loss, self.net.parameters(), self.clip)
        return {"loss_patch": loss}

    def loss(self, step: Step):
        _, fake = step.decoded_random()
        with frozen(self.net), self.autocast:
            fooled = self.net(fake).float()
        return F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled)), {}

    def modules(self):
        return {"patch": self.net}

    def optimizers(self):
        return {"opt_patch": self.opt}


class ClassifierTerm(LossTerm):
    """The run's attribute classifier (frozen) should read the random target attributes in the decoded image."""

    def __init__(self, env: TermEnv):
        self.attrs, self.autocast, self.classifier = env.attributes, env.autocast, None

    def attach(self, classifier=None, **_) -> None:
        self.classifier = classifier

    def loss(self, step: Step):
        if self.classifier is None:
            raise FaderkitError("the classifier loss needs the run's classifier (classifier.enabled: true)")
        target, fake = step.decoded_random()
        with self.autocast:
            value = attribute_loss(self.classifier(fake).float(), target.to(fake.device), self.attrs)
        return value, {"loss_clf": value}


def attribute_spreads(env: TermEnv, images: int) -> torch.Tensor:
    """(A, S, S) float64: :func:`faderkit.changemaps.attribute_spreads` of the run's train split, read once per run
    for every term and map that needs it (:meth:`TermEnv.attribute_spreads`); callers must not change it in place."""
    return env.attribute_spreads(images)


def attribute_change_map(env: TermEnv, images: int) -> torch.Tensor:
    """(S, S) in [0, 1]: per pixel, how much the train split's mean image differs between the values of each
    attribute (:func:`attribute_spreads`), summed over the attributes; mirrored when training flips images."""
    change = torch.zeros(env.recipe.data.image_size, env.recipe.data.image_size, dtype=torch.float64)
    for spread in attribute_spreads(env, images):
        change += spread
    if env.recipe.train.schedule.flip:
        change = (change + change.flip(-1)) / 2
    return (change / change.max().clamp_min(1e-12)).float()


def attribute_change_maps(env: TermEnv, images: int) -> torch.Tensor:
    """(A, S, S) in [0, 1]: :func:`faderkit.changemaps.change_maps` of the run's spreads, mirrored when training flips
    images: per attribute, where it changes the train split's images, its noise floor removed, scaled to 1."""
    return change_maps(attribute_spreads(env, images), env.recipe.train.schedule.flip)


class SparseChange(LossTerm):
    """The edit's change kept where the edited attributes draw. Each step decodes the batch with edited attributes,
    D(E(x), y'), and prices its change from the reconstruction, |D(E(x), y') - D(E(x), y)| (the reconstruction held
    fixed), per pixel: an L1 prior, so a faint change spread over cheeks and background costs as much as a stroke,
    and sparse strokes win (GANimation's and STGAN's reason for a mask). A pixel costs 1 / (1 + follow x the sum,
    over the attributes y' changes, of their change maps): where an edited attribute changes the train split's
    images the change is nearly free, elsewhere it pays in full. The maps come from the labels
    (:func:`attribute_change_maps`).

    ``flip: random``: y' is the random target the patch critic and the classifier term judge (one decode shared by
    all three; about half the attributes change at once, so the cheap pixels are their union). ``flip: one``: each
    image has one attribute, drawn uniformly, set to another value (a decode of its own), as a slider edits."""

    def __init__(self, env: TermEnv, follow: float = 20.0, images: int = 4000, warmup: int = 500,
                 flip: str = "random"):
        self.maps = attribute_change_maps(env, images).to(env.device) if follow > 0 else None
        self.follow, self.warmup, self.flip = follow, warmup, flip
        self.model, self.decoder, self.autocast = env.model, env.decoder, env.autocast
        self.sizes = torch.tensor([a.size for a in env.attributes])

    def weight_at(self, step: int, weight: float) -> float:
        return warmed_up(weight, step, self.warmup)

    def edited(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """(y', D(E(x), y'))."""
        if self.flip == "random":
            return step.decoded_random()
        n = step.labels.shape[0]
        which = torch.randint(len(self.sizes), (n,), generator=step.gen)
        size = self.sizes[which]
        shift = 1 + (torch.rand(n, generator=step.gen) * (size - 1)).long().clamp(max=size - 2)
        target = step.labels.clone()
        rows = torch.arange(n)
        target[rows, which] = (target[rows, which] + shift) % size
        with self.autocast:
            return target, self.decoder(step.feats, self.model.code(target.to(step.x.device)))

    def loss(self, step: Step):
        target, edited = self.edited(step)
        change = (edited.float() - step.recon.detach()).abs().mean(1)           # (B, S, S)
        if self.maps is None:
            value = change.mean()
        else:
            flipped = (target.to(step.y.device) != step.y).to(change.dtype)     # (B, A)
            cheap = torch.einsum("ba,ahw->bhw", flipped, self.maps)
            value = (change / (1 + self.follow * cheap)).mean()
        return value, {"loss_sparse": value, "change_l1": change.detach().mean()}


def focus_weights(err: torch.Tensor, power: float) -> torch.Tensor:
    """Per-element weights |err| ** power, detached and scaled to mean 1: the loss keeps its scale and moves its
    gradient to where the reconstruction is furthest off (a stroke not drawn), away from small errors everywhere."""
    f = err.detach().float().pow(power)
    return (f / f.mean().clamp_min(1e-12)).to(err.dtype)


class AttributeWeighted(LossTerm):
    """The reconstruction weighted per pixel by :func:`attribute_change_map`: the gradient goes where the
    attributes draw (a mouth, glasses), not where every face looks alike."""

    def __init__(self, env: TermEnv, kind: str = "mse", strength: float = 4.0, images: int = 4000,
                 focus: float = 0.0):
        change = attribute_change_map(env, images)
        w = 1 + strength * change
        self.weights = (w / w.mean()).to(env.device)[None, None]
        self.kind, self.focus = kind, focus

    def loss(self, step: Step):
        err = (step.recon - step.x).abs()
        per_pixel = (err * err) if self.kind == "mse" else err
        weights = self.weights if not self.focus else self.weights * focus_weights(err, self.focus)
        value = per_pixel.mul(weights).mean()
        # loss_rec: the unweighted loss, so that curves and the run's last line compare with a plain mse run
        return value, {"loss_weighted": value, "loss_rec": per_pixel.detach().mean()}


class FocalFrequency(LossTerm):
    """Focal frequency loss (Jiang et al. 2021, arXiv 2012.12821): the squared distance of the two images' 2-D
    spectra (orthonormal FFT per channel), each frequency weighted by its own distance to the power ``alpha``,
    scaled to a maximum of 1 per image and channel and held constant for the gradient."""

    def __init__(self, env: TermEnv, alpha: float = 1.0):
        self.alpha = alpha

    def loss(self, step: Step):
        d = torch.fft.fft2(step.recon, norm="ortho") - torch.fft.fft2(step.x.float(), norm="ortho")
        dist = d.real ** 2 + d.imag ** 2
        w = dist.detach().sqrt() ** self.alpha
        w = w / w.amax((-2, -1), keepdim=True).clamp_min(1e-12)
        value = (w * dist).mean()
        return value, {"loss_frequency": value}


class ChangeMaskPrior(LossTerm):
    """For a decoder with a change head (D = base + mask x colour): the mask of the reconstruction kept small in
    area (its mean) and smooth (its total variation). ``follow_change`` > 0 weighs the area per pixel by
    1 / (1 + follow_change x :func:`attribute_change_map`): a mask is cheap where the attributes change images
    (hair and beard for a large attribute, the mouth for a thin one) and dear where they never do."""

    def __init__(self, env: TermEnv, sparsity: float = 1.0, smoothness: float = 1.0, follow_change: float = 0.0,
                 images: int = 4000):
        if not hasattr(env.model.decoder, "last_mask"):
            raise FaderkitError("the change_mask loss needs a decoder with a change head "
                                "(model.decoder.params.head: change)")
        self.decoder, self.sparsity, self.smoothness = env.model.decoder, sparsity, smoothness
        self.area_weights = None
        if follow_change > 0:
            change = attribute_change_map(env, images)
            self.area_weights = (1 / (1 + follow_change * change)).to(env.device)[None, None]

    def loss(self, step: Step):
        a = self.decoder.last_mask.float()
        tv = (a[..., 1:, :] - a[..., :-1, :]).abs().mean() + (a[..., :, 1:] - a[..., :, :-1]).abs().mean()
        area = a.mean()
        cost = area if self.area_weights is None else (a * self.area_weights).mean()
        return self.sparsity * cost + self.smoothness * tv, {"mask_area": area, "mask_tv": tv}


__all__ = ["Pixels", "Edges", "AdversaryTerm", "PatchTerm", "ClassifierTerm", "AttributeWeighted", "FocalFrequency",
           "ChangeMaskPrior", "SparseChange"]
