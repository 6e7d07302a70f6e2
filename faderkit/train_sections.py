"""A recipe's ``train`` section in groups by concern, so that each part of a run takes only the group it reads:

    train.schedule    how long and how the autoencoder steps (the budget, the loop, its optimizer)
    train.objective   the autoencoder's loss terms and their weights (train/objective.py, the terms)
    train.adversary   the latent discriminator's updates (train/adversary.py)
    train.logging     metrics, validation, samples, checkpoints and which one is best
    train.speed       where and how fast; none of these changes what the method learns

Recipes written before the groups (every key straight under ``train``) still load: :data:`MOVED` says where
each key went, and each moved key is noted once (a :class:`MovedKey` warning: "train.dis_steps is now
train.adversary.dis_steps").
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any, Callable, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from .params import Strict


class LossSpec(Strict):
    """One term of the autoencoder's objective: a registered loss (`faderkit plugins --kind loss`) and its weight."""

    name: str = Field(description="registered loss term")
    weight: float = Field(1.0, ge=0, description="its weight in the sum (the adversary's: lambda_E after the warm-up)")
    params: dict[str, Any] = Field(default_factory=dict)


#: The flat fields that weighed the objective's terms before ``train.objective.losses``, with their defaults: a
#: recipe that lists its terms leaves them alone (each is a term's weight or kind now).
FLAT_LOSS_FIELDS = {"rec_loss": "mse", "edge_weight": 0.0, "lambda_e": 1e-4, "lambda_patch": 0.0, "lambda_clf": 0.0}


class ScheduleSection(Strict):
    steps: int = Field(1000, ge=1, description="autoencoder updates")
    time_budget: float | None = Field(
        None, gt=0, le=1e7, description="seconds of training: steps is then what this machine does in that time, "
        "measured before the run starts (logged, and stored in the run's recipe); null: train.schedule.steps. A --set "
        "train.schedule.steps=N on the command line turns it off")
    min_steps: int | None = Field(
        None, ge=1, description="with time_budget: the fewest steps the run trains, however slow the machine (it then "
        "trains longer than the budget and says so at start); null: the budget alone decides")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-4, gt=0, le=1, description="Adam learning rate (paper text 2e-3, published code 2e-4)")
    beta1: float = Field(0.5, ge=0, lt=1)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="the autoencoder's learning rate over the run: constant (paper), or cosine = from lr "
        "down to lr x lr_final at the last step")
    lr_final: float = Field(0.0, ge=0, le=1, description="cosine schedule: the last step's rate as a share of lr")
    clip_grad: float | None = Field(5.0, gt=0, description="gradient norm clip, every network's; null turns it off")
    flip: bool = Field(True, description="random horizontal flips of the training images, p = 0.5")
    seed: int = Field(0, ge=0, le=2**31 - 1)


class ObjectiveSection(Strict):
    losses: list[LossSpec] | None = Field(
        None, description="the autoencoder's objective, summed in this order: e.g. [{name: mse}, {name: edges, weight: 2}, "
        "{name: adversary, weight: 0.01}]; null: the terms the flat fields rec_loss, edge_weight, lambda_e, "
        "lambda_patch and lambda_clf describe")
    rec_loss: Literal["mse", "l1"] = Field("mse", description="reconstruction loss: mse (paper) or l1")
    edge_weight: float = Field(0.0, ge=0, description="weight of a second reconstruction term on the images' "
                               "neighbouring-pixel differences (edges, thin lines), the same loss as rec_loss; 0 = off (paper)")
    lambda_e: float = Field(1e-4, ge=0, description="final weight of the adversarial term")
    lambda_patch: float = Field(0.0, ge=0, description="weight of the patch discriminator's loss (needs model.patch_discriminator)")
    label_smoothing: float = Field(0.2, ge=0, lt=1, description="patch discriminator's smoothing of the 'real' label")
    lambda_clf: float = Field(0.0, ge=0, description="weight of the classifier's loss on images decoded with random attributes")


class AdversarySection(Strict):
    lambda_warmup: int = Field(500_000, ge=0, description="steps over which lambda_E rises linearly from 0")
    adv_objective: Literal["paper", "confusion"] = Field(
        "confusion", description="the encoder's adversarial term: paper = the discriminator's cross-entropy against the "
        "flipped attributes (Lample et al.; n-valued: a random other value); confusion = against the uniform "
        "distribution (Tzeng et al. 2015), which an encoder cannot meet by encoding the attribute inverted")
    dis_steps: int = Field(5, ge=1, le=100, description="latent-discriminator updates per autoencoder update "
                           "(paper: 1)")
    dis_lr: float | None = Field(None, gt=0, le=1, description="the latent discriminator's learning rate "
                                 "[default: train.schedule.lr]")
    dis_replay: int = Field(8, ge=0, le=1000, description="latents of this many recent iterations kept for the "
                            "discriminator's updates after the first (no encoder pass); 0: each encodes a new batch (paper)")
    shared_batch: bool = Field(True, description="the first discriminator update reuses the autoencoder's batch and "
                               "encoder pass (paper's algorithm); false: its own batch (published code), slower")


class LoggingSection(Strict):
    log_every: int = Field(25, ge=1)
    eval_every: int = Field(250, ge=1, description="validation + best-checkpoint selection interval")
    eval_batches: int = Field(8, ge=1, description="validation batches per evaluation")
    sample_every: int = Field(250, ge=1)
    checkpoint_every: int = Field(250, ge=1)
    select_by: Literal["reconstruction", "swap", "last"] = Field(
        "reconstruction", description="what picks best.safetensors at each evaluation: the validation reconstruction, "
        "swap accuracy, or last = the latest weights (with lr_schedule cosine the final ones, where the encoder has "
        "settled and the latent hides the attributes best)"
    )


class SpeedSection(Strict):
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
    channels_last: bool = Field(False, description="NHWC memory format for the networks")
    optimizer_impl: Literal["auto", "fused", "foreach", "single", "torch"] = Field(
        "auto", description="Adam kernel (the same update): auto = fused on CPU and CUDA, else torch's default; "
        "fused = one kernel for all parameters; foreach / single = torch's multi-tensor / per-tensor loops; "
        "torch = torch's own default choice")
    amp: Literal["auto", "off", "bf16", "fp16"] = Field(
        "auto", description="mixed precision: auto = bf16 where it measurably pays (a CUDA GPU with bf16 units, a CPU "
        "whose bf16 beats fp32 in a calibration cached per machine), else fp32; off (also false) = fp32; bf16; "
        "fp16 = CUDA only, with a gradient scaler (faderkit/precision.py)")
    tf32: bool = Field(True, description="CUDA: TF32 tensor cores for fp32 matmuls and convolutions")
    prefetch: bool | None = Field(None, description="read the next batch in a background thread (pinned memory on "
                                  "CUDA); null = on for CUDA, off on the CPU")
    sync_bn: bool = Field(False, description="multi-GPU runs: BatchNorm statistics over all processes (SyncBatchNorm)")
    compile: bool = Field(False, description="torch.compile the networks (slow to start; on 2 CPU cores it gained "
                          "nothing measurable: benchmarks/train_throughput.py)")
    threads: int | None = Field(None, ge=1, le=1024, description="CPU threads for torch (default: torch's choice)")

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_off(cls, value):
        # YAML reads a bare `off` (and `no`) as false: all of them mean fp32
        if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "false", "no", "fp32")):
            return "off"
        if value is True:
            raise ValueError("true is ambiguous; use auto, bf16 or fp16 (off or false for fp32)")
        return value


#: Where each key of the flat ``train`` section went: train.KEY is now train.SECTION.KEY.
MOVED = {key: section for section, keys in (
    ("schedule", ("steps", "time_budget", "min_steps", "batch_size", "lr", "beta1", "lr_schedule", "lr_final", "clip_grad",
                  "flip", "seed")),
    ("objective", ("losses", "rec_loss", "edge_weight", "lambda_e", "lambda_patch", "label_smoothing", "lambda_clf")),
    ("adversary", ("lambda_warmup", "adv_objective", "dis_steps", "dis_lr", "dis_replay", "shared_batch")),
    ("logging", ("log_every", "eval_every", "eval_batches", "sample_every", "checkpoint_every", "select_by")),
    ("speed", ("device", "channels_last", "optimizer_impl", "amp", "tf32", "prefetch", "sync_bn", "compile",
               "threads")),
) for key in keys}


class MovedKey(FutureWarning):
    """A recipe names a key where it was before the train section's groups; the message says the new key."""


@contextlib.contextmanager
def moved_key_notes(echo: Callable[[str], None]):
    """Within: each moved key's warning shown once, as one ``note: ...`` line through ``echo``."""
    with warnings.catch_warnings():
        warnings.simplefilter("default", MovedKey)
        shown = warnings.showwarning
        warnings.showwarning = lambda message, category, *rest, **kw: echo(f"note: {message}") \
            if issubclass(category, MovedKey) else shown(message, category, *rest, **kw)
        yield


def note_moved(key: str) -> None:
    """Say once (per key and process: Python's default warning filter) that train.KEY has moved."""
    warnings.warn(f"train.{key} is now train.{MOVED[key]}.{key}", MovedKey)


def moved_path(path: list[str], note: bool = True) -> list[str]:
    """A dotted recipe path with a moved key's new place (``train.dis_steps`` -> ``train.adversary.dis_steps``)."""
    if len(path) >= 2 and path[0] == "train" and path[1] in MOVED:
        if note:
            note_moved(path[1])
        return ["train", MOVED[path[1]], *path[1:]]
    return path


def nest(train: Any, note: bool = True) -> Any:
    """A raw ``train`` mapping with its flat keys moved into their groups (anything else left as given)."""
    if not isinstance(train, dict) or not any(key in MOVED for key in train):
        return train
    out = {k: dict(v) if k in _GROUPS and isinstance(v, dict) else v for k, v in train.items() if k not in MOVED}
    for key, value in train.items():
        if key not in MOVED:
            continue
        group = out.setdefault(MOVED[key], {})
        if not isinstance(group, dict):
            continue  # train.<group> is not a mapping: its own validation says so
        new = f"train.{MOVED[key]}.{key}"
        if key in group and group[key] != value:
            raise ValueError(f"train.{key} and {new} are both given; keep {new}")
        if note:
            note_moved(key)
        group[key] = value
    return out


class TrainSection(Strict):
    schedule: ScheduleSection = ScheduleSection()
    objective: ObjectiveSection = ObjectiveSection()
    adversary: AdversarySection = AdversarySection()
    logging: LoggingSection = LoggingSection()
    speed: SpeedSection = SpeedSection()

    @model_validator(mode="before")
    @classmethod
    def _from_flat(cls, raw: Any, info: ValidationInfo) -> Any:
        # a checkpoint's stored recipe moves silently: its reader cannot edit it
        return nest(raw, note=not (info.context or {}).get("stored"))


_GROUPS = tuple(TrainSection.model_fields)
