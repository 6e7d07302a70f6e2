"""Training: the attribute classifier, then the Fader Network's alternating updates.

Each iteration: the latent discriminator P learns to predict y from z = E(x); then E and D learn
to rebuild x from (z, y) while making P predict the *flipped* attributes, weighted by a lambda_E
that rises linearly from 0. The encoder runs once per iteration: P's step reads z detached, the
autoencoder's step reuses the same graph (the paper's algorithm uses one x for both updates).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from . import checkpoint as ckpt
from .codes import attribute_loss, blocks, flipped_labels, logits_to_labels
from .data import BatchStream, prepare_batch
from .device import pick_device
from .distributed import Dist
from .errors import FaderkitError, brief
from .interfaces import Attribute, AttributeDataset
from .model import FaderModel, build_classifier, build_patch_discriminator
from .plugins import registries
from .recipe import Recipe, as_resolved, to_yaml
from .rundir import RunDir
from .samples import save_grid


def open_dataset(recipe: Recipe) -> AttributeDataset:
    d = recipe.data
    return registries().datasets.create(d.name, d.root, image_size=d.image_size, attributes=d.attributes, params=d.params)


def lambda_at(step: int, recipe: Recipe) -> float:
    t = recipe.train
    return t.lambda_e * (min(1.0, step / t.lambda_warmup) if t.lambda_warmup else 1.0)


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("eta"),
                    TimeRemainingColumn(), disable=not enabled, transient=False)


def _finite(value: torch.Tensor, what: str, step: int, run: RunDir) -> None:
    if not torch.isfinite(value).all():
        last = f"{run.last} (step {ckpt.read_meta(run.last)['step']})" if run.last.exists() else "none yet"
        raise FaderkitError(
            f"{what} became {value.item()} at step {step}; training stopped. Last good checkpoint: {last}. "
            "Lower train.lr or train.lambda_e, or keep train.clip_grad on"
        )


# ---------------------------------------------------------------- classifier

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


def train_classifier(recipe: Recipe, dataset: AttributeDataset, device, out: Path, progress=True, seed_offset=0):
    """Train the attribute classifier alone and save it; returns (module, per-attribute valid accuracy)."""
    c, attrs = recipe.classifier, dataset.attributes
    torch.manual_seed(recipe.train.seed + 1000 + seed_offset)
    net = build_classifier(recipe, attrs).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=c.lr, betas=(0.9, 0.999))
    stream = BatchStream(dataset.split("train"), c.batch_size, seed=recipe.train.seed + 7 + seed_offset)
    gen = torch.Generator().manual_seed(recipe.train.seed + 11)
    net.train()
    with _progress(progress) as bar:
        task = bar.add_task("classifier", total=c.steps, stats="")
        for step in range(c.steps):
            images, labels = stream.batch(step)
            x = prepare_batch(images, device, recipe.train.flip, gen)
            loss = attribute_loss(net(x), labels.to(device), attrs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 20 == 0 or step == c.steps - 1:
                bar.update(task, completed=step + 1, stats=f"loss {loss.item():.3f}")
    acc = accuracy(net, dataset.split("valid"), attrs, device)
    meta = {"kind": "classifier", "recipe": recipe.model_dump(mode="json"),
            "attributes": [a.to_json() for a in attrs], "valid_accuracy": dict(zip([a.name for a in attrs], acc)),
            "step": c.steps}
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


# ---------------------------------------------------------------- the fader

def _adam(params, recipe: Recipe) -> torch.optim.Adam:
    t = recipe.train
    impl = {"auto": {}, "foreach": {"foreach": True}, "fused": {"fused": True}, "single": {"foreach": False}}[t.optimizer_impl]
    return torch.optim.Adam(params, lr=t.lr, betas=(t.beta1, 0.999), **impl)


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: bool = False, device: str | None = None,
                 progress: bool = True, log=print):
        self.recipe, self.resume, self.progress = recipe, resume, progress
        self.run = RunDir(run_dir)
        device = pick_device(device or recipe.train.device)
        self.dist = Dist.from_env(device)
        self.device = self.dist.device(device)
        self.main = self.dist.is_main
        self.log = log if self.main else (lambda m: None)

    # -- set-up
    def _setup(self) -> None:
        r, t = self.recipe, self.recipe.train
        if t.threads:
            torch.set_num_threads(t.threads)
        if t.batch_size % self.dist.world:
            raise FaderkitError(f"train.batch_size {t.batch_size} must divide among {self.dist.world} processes")
        self.dataset = open_dataset(r)
        self.attrs: tuple[Attribute, ...] = tuple(self.dataset.attributes)
        if not self.attrs:
            raise FaderkitError("the dataset has no attributes to edit; set data.attributes")
        torch.manual_seed(t.seed)
        self.model = FaderModel.build(r, self.attrs).to(self.device)  # before the splits: a bad architecture
        # is reported before an image cache is built
        self.train_split, self.valid_split = self.dataset.split("train"), self.dataset.split("valid")
        for split in (self.train_split, self.valid_split):
            if len(split) == 0:
                raise FaderkitError(f"the {split.name} split of {self.dataset.root} has no images; "
                                    "training needs images in both train and valid")
        skipped = {k: v for k, v in self.dataset.skipped.items() if v}
        if skipped and self.main:
            self.log("data: left out " + ", ".join(f"{v} {k}" for k, v in skipped.items()) + " image(s)")
            if not any("data_skipped" in rec for rec in self.run.read_metrics()):
                self.run.log({"step": 0, "data_skipped": skipped})
        if t.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # the networks as the loop calls them: DDP-wrapped under torchrun, compiled on request
        self.enc, self.dec, self.dis = (self._wrap(m) for m in (self.model.encoder, self.model.decoder,
                                                                  self.model.discriminator))
        self.ae_params = list(self.model.encoder.parameters()) + list(self.model.decoder.parameters())
        self.opt_ae = _adam(self.ae_params, r)
        self.opt_dis = _adam(self.model.discriminator.parameters(), r)
        self.patch = build_patch_discriminator(r, self.attrs)
        if self.patch is not None:
            self.patch.to(self.device, memory_format=torch.channels_last if t.channels_last else torch.preserve_format)
            self.patch_w, self.opt_patch = self._wrap(self.patch), _adam(self.patch.parameters(), r)
        self.stream = BatchStream(self.train_split, t.batch_size // self.dist.world, seed=t.seed,
                                  rank=self.dist.rank, world=self.dist.world)
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=t.amp == "bf16")
        self.step, self.best = 0, None
        n = min(8, len(self.valid_split))
        self.sample_x = prepare_batch(self.valid_split.images(torch.arange(n).numpy()), self.device, flip=False)
        self.sample_y = self.valid_split.labels[:n].to(self.device)
        self.classifier = None

    def _wrap(self, module):
        module = self.dist.wrap(module)
        return torch.compile(module) if self.recipe.train.compile else module

    def _save(self, path: Path, with_optim: bool) -> None:
        tensors = ckpt.prefixed("model", self.model.state_dict())
        meta = {"kind": "fader", "recipe": self.recipe.model_dump(mode="json"),
                "attributes": [a.to_json() for a in self.attrs], "step": self.step, "best": self.best,
                "image_size": self.recipe.data.image_size, "preprocess": self.dataset.preprocess_spec(),
                "has_classifier": self.classifier is not None}
        if self.classifier is not None:
            tensors.update(ckpt.prefixed("classifier", self.classifier.state_dict()))
        if self.patch is not None:
            tensors.update(ckpt.prefixed("patch", self.patch.state_dict()))
        if with_optim:
            for name, opt in self._optimizers():
                t, rest = ckpt.flatten_optimizer(name, opt.state_dict())
                tensors.update(t)
                meta[name] = rest
        ckpt.save(path, tensors, meta)

    def _restore(self) -> None:
        tensors, meta = ckpt.load(self.run.last)
        step = meta.get("step")
        if meta.get("kind") != "fader" or not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise FaderkitError(f"{self.run.last} is not a fader training checkpoint (kind {meta.get('kind')!r}, "
                                f"step {step!r}); use a new --run-dir")
        names = [a.get("name") if isinstance(a, dict) else a for a in meta.get("attributes") or []]
        if names != [a.name for a in self.attrs]:
            raise FaderkitError(f"{self.run.last} was trained on other attributes: {names}")
        try:
            self.model.load_state_dict(ckpt.unprefixed("model", tensors))
            if self.patch is not None:
                self.patch.load_state_dict(ckpt.unprefixed("patch", tensors))
            for name, opt in self._optimizers():
                opt.load_state_dict(ckpt.unflatten_optimizer(name, tensors, meta[name]))
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FaderkitError(f"{self.run.last} does not fit this run's networks ({brief(exc)}); "
                                "resume with the recipe it was trained with, or use a new --run-dir") from None
        self.step, self.best = meta["step"], meta.get("best")
        if self.main:
            self.run.truncate_metrics(self.step)

    def _optimizers(self):
        yield from (("opt_ae", self.opt_ae), ("opt_dis", self.opt_dis))
        if self.patch is not None:
            yield "opt_patch", self.opt_patch

    # -- one iteration
    def _batch(self, b: int, gen: torch.Generator):
        images, labels = self.stream.batch(b)
        x = prepare_batch(images, self.device, self.recipe.train.flip, gen, self.recipe.train.channels_last)
        return x, labels

    def _iteration(self, gen: torch.Generator) -> dict:
        t = self.recipe.train
        lam = lambda_at(self.step, self.recipe)
        per_step = t.dis_steps + (0 if t.shared_batch else 1)
        x, labels = self._batch(self.step * per_step, gen)
        y = labels.to(self.device)
        with self.autocast:
            feats = self.enc(x)  # shared by the discriminator step (detached) and the autoencoder step
        for k in range(t.dis_steps):
            if k == 0 and t.shared_batch:
                z, y_dis = feats[-1].detach(), y
            else:
                xk, lk = self._batch(self.step * per_step + k + (0 if t.shared_batch else 1), gen)
                with torch.no_grad(), self.autocast:
                    z, y_dis = self.enc(xk)[-1], lk.to(self.device)
            with self.autocast:
                loss_dis = attribute_loss(self.dis(z).float(), y_dis, self.attrs)
            self.opt_dis.zero_grad(set_to_none=True)
            loss_dis.backward()
            if t.clip_grad:
                torch.nn.utils.clip_grad_norm_(self.model.discriminator.parameters(), t.clip_grad)
            self.opt_dis.step()

        extra, stats = self._decoded_losses(x, feats, labels, gen) if self._decoded_terms() else (0.0, {})
        with self.autocast:
            recon = self.dec(feats, self.model.code(y))
            loss_rec = F.mse_loss(recon.float(), x)
            loss_adv = torch.zeros((), device=self.device)
            if lam > 0:
                target = flipped_labels(labels, self.attrs, gen).to(self.device)
                loss_adv = attribute_loss(self._frozen(self.model.discriminator, feats[-1]), target, self.attrs)
        loss = loss_rec + lam * loss_adv + extra
        finite = bool(torch.isfinite(loss.detach()) & torch.isfinite(loss_dis.detach()))
        if not self.dist.all_ok(finite, self.device):
            bad = "the autoencoder loss" if not torch.isfinite(loss.detach()) else "the discriminator loss"
            _finite(torch.tensor(float("nan")), bad if not finite else "another process's loss", self.step, self.run)
        self.opt_ae.zero_grad(set_to_none=True)
        loss.backward()
        if t.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.ae_params, t.clip_grad)
        self.opt_ae.step()
        return {"loss_rec": loss_rec.item(), "loss_dis": loss_dis.item(), "loss_adv": loss_adv.item(), "lambda_e": lam,
                **stats}

    @staticmethod
    def _frozen(net, inputs) -> torch.Tensor:
        """net(inputs) with gradients to the inputs only (the raw module, outside DDP)."""
        net.requires_grad_(False)
        try:
            return net(inputs).float()
        finally:
            net.requires_grad_(True)

    def _decoded_terms(self) -> bool:
        t = self.recipe.train
        return (self.patch is not None and t.lambda_patch > 0) or t.lambda_clf > 0

    def _decoded_losses(self, x, feats, labels, gen) -> tuple[torch.Tensor, dict]:
        """The published code's optional terms on images decoded with random target attributes:
        a patch discriminator (updated here, real vs decoded) and the frozen classifier."""
        t = self.recipe.train
        target = torch.stack([torch.randint(a.size, (labels.shape[0],), generator=gen) for a in self.attrs], 1)
        with self.autocast:
            fake = self.dec(feats, self.model.code(target.to(self.device)))
        extra, stats = torch.zeros((), device=self.device), {}
        if self.patch is not None and t.lambda_patch > 0:
            with self.autocast:
                real_logits, fake_logits = self.patch_w(x).float(), self.patch_w(fake.detach()).float()
            loss_patch = (F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1 - t.label_smoothing))
                          + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
            self.opt_patch.zero_grad(set_to_none=True)
            loss_patch.backward()
            if t.clip_grad:
                torch.nn.utils.clip_grad_norm_(self.patch.parameters(), t.clip_grad)
            self.opt_patch.step()
            with self.autocast:
                fooled = self._frozen(self.patch, fake)
            extra = extra + t.lambda_patch * F.binary_cross_entropy_with_logits(fooled, torch.ones_like(fooled))
            stats["loss_patch"] = loss_patch.item()
        if t.lambda_clf > 0:
            with self.autocast:
                loss_clf = attribute_loss(self.classifier(fake).float(), target.to(self.device), self.attrs)
            extra = extra + t.lambda_clf * loss_clf
            stats["loss_clf"] = loss_clf.item()
        return extra, stats

    # -- validation
    @torch.no_grad()
    def evaluate(self) -> dict:
        """Reconstruction MSE and (with a classifier) swap accuracy on the first validation batches."""
        m, r = self.model, self.recipe.train
        m.eval()
        n = min(len(self.valid_split), r.eval_batches * r.batch_size)
        mse_sum, swap_hits, count = 0.0, torch.zeros(len(self.attrs)), 0
        for start in range(0, n, r.batch_size):
            idx = torch.arange(start, min(n, start + r.batch_size))
            x = prepare_batch(self.valid_split.images(idx.numpy()), self.device, flip=False)
            y = self.valid_split.labels[idx].to(self.device)
            feats = m.encoder(x)
            code = m.code(y)
            mse_sum += F.mse_loss(m.decoder(feats, code), x, reduction="sum").item() / x[0].numel()
            if self.classifier is not None:
                target = flipped_labels(y, self.attrs)
                for i, s in enumerate(blocks(self.attrs)):
                    c = code.clone()
                    c[:, s] = m.code(target)[:, s]
                    pred = logits_to_labels(self.classifier(m.decoder(feats, c)), self.attrs)
                    swap_hits[i] += (pred[:, i] == target[:, i]).float().sum().cpu()
            count += len(idx)
        m.train()
        out = {"valid_mse": mse_sum / count}
        if self.classifier is not None:
            acc = (swap_hits / count).tolist()
            out["valid_swap"] = dict(zip([a.name for a in self.attrs], acc))
            out["valid_swap_mean"] = sum(acc) / len(acc)
        return out

    def _is_better(self, ev: dict) -> bool:
        if self.recipe.train.select_by == "swap" and "valid_swap_mean" in ev:
            score = ev["valid_swap_mean"] - ev["valid_mse"]  # ties broken by reconstruction
        else:
            score = -ev["valid_mse"]
        if self.best is None or score > self.best:
            self.best = score
            return True
        return False

    # -- the loop
    def run_training(self) -> Path:
        r = self.recipe
        error = None
        if self.main:
            try:
                self.run.open(self.resume)
            except FaderkitError as exc:
                error = exc
        if not self.dist.all_ok(error is None, torch.device("cpu") if self.device.type == "cpu" else self.device):
            self.dist.close()
            raise error or FaderkitError(f"the main process could not open {self.run.path}")
        try:
            self._setup()
            from_checkpoint = self.resume and self.run.last.exists()
            if from_checkpoint:
                self._check_compatible(ckpt.read_meta(self.run.last))
            if self.main and not from_checkpoint:
                self.run.write_recipe(to_yaml(r))
            if r.classifier.enabled:
                self._classifier()
            if from_checkpoint:
                self._restore()
                if self.main:  # only once the checkpoint is known to fit: a refused resume alters nothing
                    self.run.write_recipe(to_yaml(r))
                self.log(f"resuming {self.run.path} at step {self.step}")
            elif self.resume:
                self.log(f"{self.run.path} has no checkpoint yet: starting from step 0")
                if self.main:
                    self.run.truncate_metrics(0)
            self._loop()
        except BaseException:
            if self.main:
                self.run.discard_if_unused()
            raise
        finally:
            self.run.close()
            self.dist.close()
        return self.run.best if self.run.best.exists() else self.run.last

    def _check_compatible(self, meta: dict) -> None:
        """Resuming needs the same model and data as the checkpoint; train settings may change."""
        saved = as_resolved(meta.get("recipe"))  # an older checkpoint's params lack their defaults
        now = self.recipe.model_dump(mode="json")
        for section, keys in (("data", ("name", "image_size", "attributes")), ("model", None)):
            old, new = _dotted(saved.get(section) or {}), _dotted(now[section])  # model.decoder.params.n_skip
            for key in keys or sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    raise FaderkitError(
                        f"{self.run.last} was trained with {section}.{key} = {old.get(key)!r}, this recipe has "
                        f"{new.get(key)!r}; resume with the run's own recipe ({self.run.recipe}) or use a new --run-dir")

    def _classifier(self) -> None:
        r = self.recipe
        if self.main and not self.run.classifier.exists():
            _, acc = train_classifier(r, self.dataset, self.device, self.run.classifier, self.progress)
            self.log("classifier valid accuracy: " + ", ".join(f"{a.name} {v:.1%}" for a, v in zip(self.attrs, acc)))
            self.run.log({"step": 0, "classifier_valid_accuracy": dict(zip([a.name for a in self.attrs], acc))})
        self.dist.barrier()
        self.classifier, _ = load_classifier(self.run.classifier, r, self.attrs, self.device)
        self.classifier.requires_grad_(False)

    def _loop(self) -> None:
        t = self.recipe.train
        gen = torch.Generator()
        self.model.train()
        t0, seen, stats = time.perf_counter(), 0, {}
        with _progress(self.progress and self.main) as bar:
            task = bar.add_task("fader", total=t.steps, completed=self.step, stats="")
            while self.step < t.steps:
                # every random draw of a step (flips, flipped targets, dropout) depends on (seed, step)
                # only, so a run resumed from any checkpoint continues exactly as if never stopped
                gen.manual_seed(t.seed * 1_000_003 + self.step)
                torch.manual_seed(t.seed * 1_000_003 + self.step + 1)
                stats = self._iteration(gen)
                self.step += 1
                seen += t.batch_size * (t.dis_steps + (0 if t.shared_batch else 1))  # images drawn, all processes
                done = self.step == t.steps
                if not self.main:
                    continue
                if self.step % t.log_every == 0 or done:
                    ips = seen / (time.perf_counter() - t0)
                    self.run.log({"step": self.step, **stats, "images_per_s": round(ips, 1)})
                    bar.update(task, completed=self.step, stats=f"rec {stats['loss_rec']:.4f} dis {stats['loss_dis']:.3f} "
                               f"adv {stats['loss_adv']:.3f} λ {stats['lambda_e']:.2g} {ips:.0f} img/s")
                    t0, seen = time.perf_counter(), 0
                if self.step % t.eval_every == 0 or done:
                    ev = self.evaluate()
                    better = self._is_better(ev)
                    self.run.log({"step": self.step, **ev, "best": better})
                    if better:
                        self._save(self.run.best, with_optim=False)
                if self.step % t.sample_every == 0 or done:
                    save_grid(self.model, self.sample_x, self.sample_y, self.run.samples / f"step_{self.step:06d}.png")
                if self.step % t.checkpoint_every == 0 or done:
                    self._save(self.run.last, with_optim=True)
        self.log(f"done: {self.step} steps; final reconstruction MSE {stats.get('loss_rec', float('nan')):.4f}; "
                 f"best checkpoint {self.run.best}")


def _dotted(section: dict, prefix: str = "") -> dict:
    """A nested section as one level of dotted keys, so a difference is named where it is."""
    out = {}
    for key, value in section.items():
        if isinstance(value, dict) and value:
            out.update(_dotted(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def train(recipe: Recipe, run_dir, resume=False, device=None, progress=True, log=print) -> Path:
    return Trainer(recipe, run_dir, resume, device, progress, log).run_training()
