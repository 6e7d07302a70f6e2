"""The Fader Network's training run: set-up, the iteration, checkpoints, resume, and the loop."""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from .. import checkpoint as ckpt
from ..changemaps import stored_maps
from ..data import BatchStream, open_dataset, prepare_batch, split_with_images
from ..device import configure_backends, describe, gpu_recipe_on_cpu, pick_device
from ..distributed import Dist
from ..errors import FaderkitError, brief
from ..interfaces import Attribute
from ..model import FaderModel
from ..precision import resolve as resolve_precision
from ..prefetch import Prefetcher
from ..recipe import Recipe, as_resolved, to_yaml
from ..train_sections import AdversarySection, ObjectiveSection, ScheduleSection
from ..rundir import RunDir
from .samples import save_grid, save_maps
from .adversary import warmed_up
from .budget import calibrate
from .classifier import load_classifier, train_classifier
from .objective import Objective, Step, TermEnv, objective, terms_named
from .optim import adam, update, with_scaler
from .progress import progress_bar
from .validation import improves, score, validate


def lambda_at(step: int, terms: ObjectiveSection, adversary: AdversarySection) -> float:
    """lambda_E at ``step``: the adversary term's weight, raised linearly from 0 over ``lambda_warmup`` steps."""
    spec = terms_named(objective(terms), "adversary")
    return warmed_up(spec.weight if spec is not None else 0.0, step, adversary.lambda_warmup)


def lr_at(step: int, t: ScheduleSection) -> float:
    """The autoencoder's learning rate at ``step`` (0-based): ``lr``, or its cosine decay to ``lr x lr_final``
    at the last step."""
    if t.lr_schedule == "constant" or t.steps <= 1:
        return t.lr
    w = 0.5 * (1 + math.cos(math.pi * min(step, t.steps - 1) / (t.steps - 1)))
    return t.lr * (t.lr_final + (1 - t.lr_final) * w)


#: The stats the progress bar shows when the run's terms give them: (key, label, format).
SHOWN = (("loss_rec", "rec", ".4f"), ("loss_dis", "dis", ".3f"), ("loss_adv", "adv", ".3f"), ("lambda_e", "λ", ".2g"))


class Trainer:
    def __init__(self, recipe: Recipe, run_dir: str | Path, resume: bool = False, device: str | None = None,
                 progress: bool = True, log=print):
        self.recipe, self.resume, self.progress = recipe, resume, progress
        self.run = RunDir(run_dir)
        device = pick_device(device or recipe.train.speed.device)
        self.dist = Dist.from_env(device)
        self.device = self.dist.device(device)
        self.main = self.dist.is_main
        self.log = log if self.main else (lambda m: None)

    # -- set-up
    def _setup(self) -> None:
        r, t, speed = self.recipe, self.recipe.train.schedule, self.recipe.train.speed
        if speed.threads:
            torch.set_num_threads(speed.threads)
        self._choose_precision()
        if t.batch_size % self.dist.world:
            raise FaderkitError(f"train.schedule.batch_size {t.batch_size} must divide among {self.dist.world} "
                                "processes")
        self.dataset = open_dataset(r)
        self.attrs: tuple[Attribute, ...] = tuple(self.dataset.attributes)
        if not self.attrs:
            raise FaderkitError("the dataset has no attributes to edit; set data.attributes")
        torch.manual_seed(t.seed)
        self.model = FaderModel.build(r, self.attrs).to(self.device)  # before the splits: a bad architecture
        # is reported before an image cache is built
        self.train_split, self.valid_split = (split_with_images(self.dataset, name, "training needs images in both "
                                                                "train and valid") for name in ("train", "valid"))
        self._skipped = {k: v for k, v in self.dataset.skipped.items() if v}
        if self._skipped and self.main:
            self.log("data: left out " + ", ".join(f"{v} {k}" for k, v in self._skipped.items()) + " image(s)")
        if speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # the networks as the loop calls them: DDP-wrapped under torchrun, compiled on request
        self.enc, self.dec, dis = (self._wrap(m) for m in (self.model.encoder, self.model.decoder,
                                                             self.model.discriminator))
        self.ae_params = list(self.model.encoder.parameters()) + list(self.model.decoder.parameters())
        self.opt_ae = adam(self.ae_params, t, speed.optimizer_impl, self.device)
        self.autocast, self.scaler = self.precision.autocast(), self.precision.grad_scaler()
        with_scaler(self.opt_ae, self.scaler)
        env = TermEnv(r, self.model, self.dec, dis, self.attrs, self.dataset, self.train_split, self.device,
                      self.autocast, self._wrap,
                      lambda params, lr=None: with_scaler(adam(params, t, speed.optimizer_impl, self.device, lr),
                                                          self.scaler))
        self.env, self.objective = env, Objective.build(env)  # the terms of train.objective, in summing order
        # where each attribute changes the training images, the others held fixed: stored in every checkpoint for
        # the local output mode
        self.model.change_maps = stored_maps(self.train_split, self.attrs, r.data.image_size, t.flip).to(self.device)
        self.stream = BatchStream(self.train_split, t.batch_size // self.dist.world, seed=t.seed,
                                  rank=self.dist.rank, world=self.dist.world)
        prefetch = speed.prefetch if speed.prefetch is not None else self.device.type == "cuda"
        self.prefetch = Prefetcher(self.stream, pin=self.device.type == "cuda", enabled=prefetch)
        self.step, self.best = 0, None
        n = min(8, len(self.valid_split))
        self.sample_x = prepare_batch(self.valid_split.images(torch.arange(n).numpy()), self.device, flip=False)
        self.sample_y = self.valid_split.labels[:n].to(self.device)
        self.classifier = None

    def _first_records(self) -> None:
        """The run's first metrics (device and precision, images left out), written once the data is known usable
        and after recipe.yaml: a start stopped at any point leaves either no run or one that --resume continues."""
        if self._precision_record:
            self.run.log(self._precision_record)
        if self._skipped and not any("data_skipped" in rec for rec in self.run.read_metrics()):
            self.run.log({"step": 0, "data_skipped": self._skipped})

    def _say_start(self) -> None:
        """The device, precision and data, once the data and the run are known to be usable."""
        for line in self._first_lines + [f"data: {self.dataset!r}"]:
            self.log(line)

    def _choose_precision(self) -> None:
        """Device set-up and the precision (a resumed run keeps its own under auto), said on the first log line."""
        speed = self.recipe.train.speed
        configure_backends(self.device, speed.tf32)
        stored, resuming = None, self.resume and self.run.last.exists()
        if resuming:
            try:
                stored = ckpt.read_meta(self.run.last).get("precision")
            except FaderkitError:
                pass  # reported where the checkpoint is read for resuming
        self.precision = resolve_precision(speed.amp, self.device, stored)
        # said once the data is known to be usable: a refused start is one error line
        self._first_lines = [f"device: {describe(self.device)}; precision: {self.precision}"]
        warning = gpu_recipe_on_cpu(self.device, self.recipe.data.image_size)
        if warning:
            self._first_lines.append(warning)
        self._precision_record = None if resuming else {"step": 0, "device": describe(self.device),
                                                         "precision": self.precision.name}

    def _wrap(self, module):
        speed = self.recipe.train.speed
        module = self.dist.wrap(module, speed.sync_bn)
        return torch.compile(module) if speed.compile else module

    def _optimizers(self):
        yield "opt_ae", self.opt_ae
        yield from self.objective.optimizers()

    # -- checkpoints
    def _save(self, path: Path, with_optim: bool) -> None:
        tensors = ckpt.prefixed("model", self.model.state_dict())
        meta = {"kind": "fader", "recipe": self.recipe.model_dump(mode="json"),
                "attributes": [a.to_json() for a in self.attrs], "step": self.step, "best": self.best,
                "image_size": self.recipe.data.image_size, "preprocess": self.dataset.preprocess_spec(),
                "has_classifier": self.classifier is not None, "precision": self.precision.name}
        if self.scaler is not None:
            meta["grad_scaler"] = self.scaler.state_dict()
        if self.classifier is not None:
            tensors.update(ckpt.prefixed("classifier", self.classifier.state_dict()))
        tensors.update(self.objective.networks())
        if self.model.change_maps is not None:
            tensors["change_maps"] = self.model.change_maps.cpu()
        if with_optim:
            for name, opt in self._optimizers():
                t, rest = ckpt.flatten_optimizer(name, opt.state_dict())
                tensors.update(t)
                meta[name] = rest
            tensors.update(self.objective.train_state())
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
            for name, opt in self._optimizers():
                opt.load_state_dict(ckpt.unflatten_optimizer(name, tensors, meta[name]))
            self.objective.load(tensors, self.device)
            if self.scaler is not None and isinstance(meta.get("grad_scaler"), dict):
                self.scaler.load_state_dict(meta["grad_scaler"])
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FaderkitError(f"{self.run.last} does not fit this run's networks ({brief(exc)}); "
                                "resume with the recipe it was trained with, or use a new --run-dir") from None
        self.step, self.best = meta["step"], meta.get("best")
        t = self.recipe.train.schedule
        if t.time_budget:  # the count the run chose when it started, not a new measurement
            saved = (as_resolved(meta.get("recipe")).get("train") or {}).get("schedule") or {}
            if isinstance(saved.get("steps"), int) and saved.get("time_budget") == t.time_budget:
                t.steps = saved["steps"]
        if self.main:
            self.run.truncate_metrics(self.step)

    # -- one iteration
    def _batch(self, b: int, gen: torch.Generator):
        images, labels = self.prefetch.batch(b)
        train = self.recipe.train
        x = prepare_batch(images, self.device, train.schedule.flip, gen, train.speed.channels_last)
        return x, labels

    def _batches_per_step(self) -> int:
        """The autoencoder's batch, and those the terms draw for themselves (an adversary without replay)."""
        return 1 + self.objective.batches_per_step()

    def _iteration(self, gen: torch.Generator) -> dict:
        """The paper's algorithm: the adversaries' updates, then one update of E and D on the weighted terms."""
        first = self.step * self._batches_per_step()
        offset = 0 if self.recipe.train.adversary.shared_batch else 1
        x, labels = self._batch(first, gen)

        def fresh(k: int):  # a new batch's (adversary input, labels), for an adversary that reads more than x
            xk, lk = self._batch(first + k + offset, gen)
            with torch.no_grad(), self.autocast:
                return self.model.adversary_input(self.enc(xk)), lk.to(self.device)

        with self.autocast:
            feats = self.enc(x)  # shared by the adversaries' updates (detached) and the autoencoder's
        step = Step(self.step, x, labels, feats, gen, fresh, self.env)
        before = self.objective.before(step)
        with self.autocast:
            step.recon = self.dec(feats, self.model.code(step.y)).float()
        loss, stats = self.objective.total(step)
        finite = bool(torch.isfinite(loss.detach()) & all(torch.isfinite(v.detach()) for _, v in before.values()))
        if not self.dist.all_ok(finite, self.device):
            bad = "the autoencoder loss" if not torch.isfinite(loss.detach()) else \
                next(term.before_name for term, v in before.values() if not torch.isfinite(v.detach()))
            self._stop(bad if not finite else "another process's loss")
        for group in self.opt_ae.param_groups:
            group["lr"] = lr_at(self.step, self.recipe.train.schedule)
        update(self.opt_ae, loss, self.ae_params, self.recipe.train.schedule.clip_grad)
        stats.update({k: v for k, (_, v) in before.items()})
        return {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in stats.items()}

    def _stop(self, what: str) -> None:
        last = f"{self.run.last} (step {ckpt.read_meta(self.run.last)['step']})" if self.run.last.exists() else "none yet"
        raise FaderkitError(f"{what} became nan at step {self.step}; training stopped. Last good checkpoint: {last}. "
                            "Lower train.schedule.lr or the adversary's weight (train.objective), or keep train.schedule.clip_grad on")

    # -- the run
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
            if self.main:
                self._first_records()
            if not from_checkpoint:  # said once the data and the run are known to be usable
                self._say_start()
            if r.classifier.enabled:
                self._classifier()
            if from_checkpoint:
                self._restore()
                if self.main:  # only once the checkpoint is known to fit: a refused resume alters nothing
                    self.run.write_recipe(to_yaml(r))
                self._say_start()
                self.log(f"resuming {self.run.path} at step {self.step}")
            elif self.resume:
                self.log(f"{self.run.path} has no checkpoint yet: starting from step 0")
                if self.main:
                    self.run.truncate_metrics(0)
            if r.train.schedule.time_budget and not from_checkpoint:
                self._spend(r.train.schedule.time_budget)
            self._loop()
        except BaseException:
            if self.main:
                self.run.discard_if_unused()
            raise
        finally:
            if hasattr(self, "prefetch"):
                self.prefetch.close()
            self.run.close()
            self.dist.close()
        return self.run.best if self.run.best.exists() else self.run.last

    def _spend(self, seconds: float) -> None:
        """train.schedule.steps from the time budget, measured on this machine; the run's recipe records the count."""
        steps, per_step, parts = calibrate(self, seconds)
        floor = self.recipe.train.schedule.min_steps
        bought, steps = steps, max(steps, floor or 0)
        self.recipe.train.schedule.steps = steps
        self.log(f"time budget {seconds:g} s at {per_step * 1000:.0f} ms a step here ({parts['iteration'] * 1000:.0f} ms "
                 f"the iteration, {parts['events'] * 1000:.1f} ms evaluations, samples and checkpoints): {steps} steps "
                 f"(to repeat this run elsewhere: --set train.schedule.steps={steps})")
        if steps > bought:
            self.log(f"warning: this machine does {bought} steps in the budget, fewer than the recipe's "
                     f"train.schedule.min_steps ({floor}): training {steps} steps, about {steps * per_step / 60:.0f} min "
                     f"instead of {seconds / 60:.0f}")
        if self.main:
            self.run.write_recipe(to_yaml(self.recipe))
            self.run.log({"step": 0, "time_budget": {"seconds": seconds, "seconds_per_step": round(per_step, 5),
                                                     "steps": steps, "bought": bought, **{k: round(v, 5) for k, v in parts.items()}}})

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
            _, acc = train_classifier(r, self.dataset, self.device, self.run.classifier, self.progress,
                                      precision=self.precision)
            self.log("classifier valid accuracy: " + ", ".join(f"{a.name} {v:.1%}" for a, v in zip(self.attrs, acc)))
            self.run.log({"step": 0, "classifier_valid_accuracy": dict(zip([a.name for a in self.attrs], acc))})
        self.dist.wait_for_main()
        self.classifier, _ = load_classifier(self.run.classifier, r, self.attrs, self.device)
        self.classifier.requires_grad_(False)
        self.objective.attach(classifier=self.classifier)

    def _loop(self) -> None:
        t, logs = self.recipe.train.schedule, self.recipe.train.logging
        gen = torch.Generator()
        self.model.train()
        t0, seen, stats = time.perf_counter(), 0, {}
        with progress_bar(self.progress and self.main) as bar:
            task = bar.add_task("fader", total=t.steps, completed=self.step, stats="")
            while self.step < t.steps:
                # every random draw of a step (flips, flipped targets, dropout) depends on (seed, step)
                # only, so a run resumed from any checkpoint continues exactly as if never stopped
                gen.manual_seed(t.seed * 1_000_003 + self.step)
                torch.manual_seed(t.seed * 1_000_003 + self.step + 1)
                stats = self._iteration(gen)
                self.step += 1
                seen += t.batch_size * self._batches_per_step()  # images drawn, all processes
                done = self.step == t.steps
                if not self.main:
                    continue
                if self.step % logs.log_every == 0 or done:
                    ips = seen / (time.perf_counter() - t0)
                    gpu = {"gpu_peak_mib": round(torch.cuda.max_memory_allocated(self.device) / 2**20)} \
                        if self.device.type == "cuda" else {}
                    self.run.log({"step": self.step, **stats, "images_per_s": round(ips, 1), **gpu})
                    shown = " ".join(f"{label} {stats[k]:{fmt}}" for k, label, fmt in SHOWN if k in stats)
                    bar.update(task, completed=self.step, stats=f"{shown} {ips:.0f} img/s"
                               + (f" {gpu['gpu_peak_mib']:,} MiB" if gpu else ""))
                    t0, seen = time.perf_counter(), 0
                if self.step % logs.eval_every == 0 or done:
                    ev = validate(self.model, self.classifier, self.valid_split, t.batch_size, logs.eval_batches, self.device)
                    better = improves(ev, self.best, logs.select_by)
                    if better:
                        self.best = score(ev, logs.select_by)
                    self.run.log({"step": self.step, **ev, "best": better})
                    if better:
                        self._save(self.run.best, with_optim=False)
                if self.step % logs.sample_every == 0 or done:
                    save_grid(self.model, self.sample_x, self.sample_y, self.run.samples / f"step_{self.step:06d}.png")
                    if not (self.run.samples / "change_maps.png").exists():
                        save_maps(self.model.change_maps, self.attrs, self.run.samples / "change_maps.png")
                if self.step % logs.checkpoint_every == 0 or done:
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
