"""Recipes: YAML validated by pydantic, with dotted ``--set`` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import FaderkitError
from .params import BadParams, as_recipe, check, problems
from .plugins import registries


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=False)


class Component(Strict):
    """A registered component chosen by name, with the keyword parameters of its factory."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class DataSection(Strict):
    name: str = Field(description="registered dataset name (see `faderkit plugins`)")
    root: Path = Field(description="folder holding the dataset in its on-disk layout")

    @field_validator("root")
    @classmethod
    def _no_nul(cls, root: Path) -> Path:
        if "\0" in str(root):
            raise ValueError("root contains a NUL character")
        return root
    attributes: list[str] | None = Field(None, description="attribute subset by name; all when omitted")
    image_size: int = Field(64, ge=16, le=512)
    params: dict[str, Any] = Field(default_factory=dict, description="dataset-specific options")

    @model_validator(mode="after")
    def _power_of_two(self):
        s = self.image_size
        if s & (s - 1):
            raise ValueError(f"image_size must be a power of two (got {s}); try 64, 128 or 256")
        return self


class ModelSection(Strict):
    n_layers: int | None = Field(None, ge=1, le=9, description="stride-2 layers in the encoder (paper: 7 at 256 px); "
                                 "default: down to a 2x2 latent, as the paper")
    init_fm: int = Field(16, ge=1, description="feature maps of the first encoder layer (paper: 16)")
    max_fm: int = Field(512, ge=1, description="cap on feature maps (paper: 512)")
    encoder: Component = Component(name="paper")
    decoder: Component = Component(name="paper")
    discriminator: Component = Field(
        Component(name="mlp"), description="latent discriminator (paper: latent; default: mlp, which standardises z "
        "per dimension and hides the attributes far better, see docs/quality.md)")
    patch_discriminator: Component | None = Field(
        None, description="optional image discriminator on decoded images (published code); weight train.lambda_patch")


class LossSpec(Strict):
    """One term of the autoencoder's objective: a registered loss (`faderkit plugins --kind loss`) and its weight."""

    name: str = Field(description="registered loss term")
    weight: float = Field(1.0, ge=0, description="its weight in the sum (the adversary's: lambda_E after the warm-up)")
    params: dict[str, Any] = Field(default_factory=dict)


#: The flat fields that weighed the objective's terms before ``train.losses``, with their defaults: a recipe
#: that lists its terms leaves them alone (each is a term's weight or kind now).
FLAT_LOSS_FIELDS = {"rec_loss": "mse", "edge_weight": 0.0, "lambda_e": 1e-4, "lambda_patch": 0.0, "lambda_clf": 0.0}


class TrainSection(Strict):
    steps: int = Field(1000, ge=1, description="autoencoder updates")
    time_budget: float | None = Field(
        None, gt=0, le=1e7, description="seconds of training: steps is then what this machine does in that time, "
        "measured before the run starts (logged, and stored in the run's recipe); null: train.steps. A --set "
        "train.steps=N on the command line turns it off")
    batch_size: int = Field(32, ge=1)
    lr: float = Field(2e-4, gt=0, le=1, description="Adam learning rate (paper text 2e-3, published code 2e-4)")
    beta1: float = Field(0.5, ge=0, lt=1)
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="the autoencoder's learning rate over the run: constant (paper), or cosine = from lr "
        "down to lr x lr_final at the last step")
    lr_final: float = Field(0.0, ge=0, le=1, description="cosine schedule: the last step's rate as a share of lr")
    rec_loss: Literal["mse", "l1"] = Field("mse", description="reconstruction loss: mse (paper) or l1")
    edge_weight: float = Field(0.0, ge=0, description="weight of a second reconstruction term on the images' "
                               "neighbouring-pixel differences (edges, thin lines), the same loss as rec_loss; 0 = off (paper)")
    losses: list[LossSpec] | None = Field(
        None, description="the autoencoder's objective, summed in this order: e.g. [{name: mse}, {name: edges, weight: 2}, "
        "{name: adversary, weight: 0.01}]; null: the terms the flat fields rec_loss, edge_weight, lambda_e, "
        "lambda_patch and lambda_clf describe")
    lambda_e: float = Field(1e-4, ge=0, description="final weight of the adversarial term")
    lambda_warmup: int = Field(500_000, ge=0, description="steps over which lambda_E rises linearly from 0")
    adv_objective: Literal["paper", "confusion"] = Field(
        "confusion", description="the encoder's adversarial term: paper = the discriminator's cross-entropy against the "
        "flipped attributes (Lample et al.; n-valued: a random other value); confusion = against the uniform "
        "distribution (Tzeng et al. 2015), which an encoder cannot meet by encoding the attribute inverted")
    dis_steps: int = Field(5, ge=1, le=100, description="latent-discriminator updates per autoencoder update "
                           "(paper: 1)")
    dis_lr: float | None = Field(None, gt=0, le=1, description="the latent discriminator's learning rate "
                                 "[default: train.lr]")
    dis_replay: int = Field(8, ge=0, le=1000, description="latents of this many recent iterations kept for the "
                            "discriminator's updates after the first (no encoder pass); 0: each encodes a new batch (paper)")
    shared_batch: bool = Field(True, description="the first discriminator update reuses the autoencoder's batch and "
                               "encoder pass (paper's algorithm); false: its own batch (published code), slower")
    lambda_patch: float = Field(0.0, ge=0, description="weight of the patch discriminator's loss (needs model.patch_discriminator)")
    label_smoothing: float = Field(0.2, ge=0, lt=1, description="patch discriminator's smoothing of the 'real' label")
    lambda_clf: float = Field(0.0, ge=0, description="weight of the classifier's loss on images decoded with random attributes")
    clip_grad: float | None = Field(5.0, gt=0, description="gradient norm clip; null turns it off")
    flip: bool = Field(True, description="random horizontal flips, p = 0.5")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N")
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
    # speed: none of these changes what the method learns
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


class ClassifierSection(Strict):
    """An attribute classifier trained beside the model (``edit`` uses it for unset attributes)."""

    enabled: bool = True
    name: str = "paper"
    params: dict[str, Any] = Field(default_factory=dict)
    steps: int = Field(500, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0, le=1)


class Recipe(Strict):
    data: DataSection
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    classifier: ClassifierSection = ClassifierSection()

    @model_validator(mode="after")
    def _latent_is_at_least_one_pixel(self):
        size = self.data.image_size
        if self.model.n_layers is None:
            self.model.n_layers = max(1, size.bit_length() - 2)  # a 2x2 latent (7 layers at 256 px)
        n = self.model.n_layers
        if size >> n < 1:
            raise ValueError(f"model.n_layers {n} halves data.image_size {size} below one pixel; "
                             f"use at most {size.bit_length() - 1} layers at {size} px")
        return self

    @model_validator(mode="after")
    def _losses_have_their_networks(self):
        t = self.train
        if t.losses is not None:
            for key, default in FLAT_LOSS_FIELDS.items():
                if getattr(t, key) != default:
                    raise ValueError(f"train.{key} and train.losses both given: with train.losses, give each term's "
                                     "weight there (e.g. {name: edges, weight: 2}) and leave train." + key + " out")
            names = [term.name for term in t.losses]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"train.losses lists {', '.join(twice)} twice")
        patch, clf = (t.lambda_patch > 0, t.lambda_clf > 0) if t.losses is None else \
            (any(x.name == "patch" and x.weight > 0 for x in t.losses), any(x.name == "classifier" and x.weight > 0
                                                                            for x in t.losses))
        if patch and self.model.patch_discriminator is None:
            raise ValueError("the patch loss (train.lambda_patch > 0) needs model.patch_discriminator, e.g. {name: patch}")
        if clf and not self.classifier.enabled:
            raise ValueError("the classifier loss (train.lambda_clf > 0) needs classifier.enabled: true")
        return self


#: Where a recipe names a registered component: (the section holding its ``name`` and ``params``, its kind).
COMPONENTS = (
    ("data", "dataset"),
    ("model.encoder", "encoder"),
    ("model.decoder", "decoder"),
    ("model.discriminator", "discriminator"),
    ("model.patch_discriminator", "image_discriminator"),
    ("classifier", "classifier"),
    ("train.losses", "loss"),
)


def _format_error(found: list[tuple[tuple, str]], source: str) -> str:
    parts = [f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg for loc, msg in found]
    return f"invalid recipe {source}: " + "; ".join(parts)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.steps=200`` -> (["train", "steps"], 200); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise FaderkitError(f"malformed --set '{text}': expected KEY=VALUE, e.g. train.steps=200")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _item(items: list, part: str, text: str):
    """An item of a list in a recipe, by its index or (a list of named terms) its name."""
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    named = [x for x in items if isinstance(x, dict) and x.get("name") == part]
    if len(named) == 1:
        return named[0]
    names = [x.get("name") for x in items if isinstance(x, dict) and x.get("name")]
    raise FaderkitError(f"--set {text}: no item '{part}' in that list; give an index below {len(items)}"
                        + (f" or a name: {', '.join(map(str, names))}" if names else ""))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = _item(node, part, text) if isinstance(node, list) else node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, (dict, list)):
                raise FaderkitError(f"--set {text}: '{part}' is a value, not a section")
            node = child
        if isinstance(node, list):
            raise FaderkitError(f"--set {text}: '{path[-2]}' is a list; name an item and its key, "
                                f"e.g. {'.'.join(path[:-1])}.0.weight or, for a list of terms, {'.'.join(path[:-1])}.edges.weight")
        node[path[-1]] = value
    return raw


#: A recipe is a few hundred bytes; refuse anything absurd before reading it.
MAX_RECIPE_BYTES = 1 << 20


def read_yaml(path: Path) -> dict:
    path = Path(path)
    if path.exists() and not path.is_file():
        raise FaderkitError(f"recipe {path} is not a regular file; give a YAML file")
    if path.is_file() and path.stat().st_size > MAX_RECIPE_BYTES:
        raise FaderkitError(f"recipe {path} is {path.stat().st_size:,} bytes; a recipe is a small YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaderkitError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FaderkitError(f"recipe {path} is not UTF-8 text (byte {exc.start}); give a YAML file") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise FaderkitError(f"recipe {path} is nested too deeply to be a recipe") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise FaderkitError(f"recipe {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FaderkitError(f"recipe {path} must be a mapping of sections (data, model, train, ...)")
    return raw


def resolve_components(recipe, components: Iterable[tuple[str, str]], stored: bool = False) -> list[tuple[tuple, str]]:
    """Check and fill in, in place, the ``params`` of every component a recipe names.

    ``components`` are (dotted path of a section holding ``name`` and ``params``, registry kind).
    Returns the problems, located in the recipe. A ``stored`` recipe (a checkpoint's) is resolved
    as far as today's plugins allow: an unknown name or params that no longer fit are left as
    stored, for the build to report should that component ever be built.
    """
    regs = registries()
    found: list[tuple[tuple, str]] = []
    for path, kind in components:
        section = recipe
        for part in path.split("."):
            section = getattr(section, part)
        if section is None:  # an optional component left out
            continue
        where = tuple(path.split("."))
        items = enumerate(section) if isinstance(section, list) else [(None, section)]  # a list of components
        for i, item in items:
            found += _resolve_one(regs[kind], item, where if i is None else where + (i,), stored)
    return found


def _resolve_one(registry, section, where: tuple, stored: bool) -> list[tuple[tuple, str]]:
    try:
        model = registry.get(section.name).params
    except FaderkitError as exc:  # an unknown name, with the choices
        return [] if stored else [(where + ("name",), str(exc))]
    if model is None:
        return []
    try:
        section.params = as_recipe(check(model, section.params))
    except BadParams as exc:
        return [] if stored else [(where + ("params",) + loc, msg) for loc, msg in exc.problems]
    return []


def validate(raw: dict, source: str = "", stored: bool = False) -> Recipe:
    """A recipe from its raw mapping, with every component's params checked and their defaults filled in.

    ``stored``: the recipe embedded in a checkpoint, resolved as far as the installed plugins allow
    (see :func:`resolve_components`), so a checkpoint still loads without the
    plugin of a dataset it does not need.
    """
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise FaderkitError(_format_error(problems(exc), source)) from None
    found = resolve_components(recipe, COMPONENTS, stored=stored)
    if found:
        raise FaderkitError(_format_error(found, source))
    return recipe


def as_resolved(raw) -> dict:
    """A stored recipe (a checkpoint's) as it resolves today, params with their defaults, for comparing
    with a current recipe; as stored when it no longer validates at all."""
    try:
        return validate(raw, stored=True).model_dump(mode="json")
    except FaderkitError:
        return raw if isinstance(raw, dict) else {}


def _with_defaults(raw: dict) -> dict:
    """``raw`` over the default values of the sections that have them (no validation)."""
    def merge(base, top):
        if isinstance(base, dict) and isinstance(top, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in top.items()}}
        return top
    defaults = {name: field.default.model_dump(mode="json") for name, field in Recipe.model_fields.items()
                if isinstance(field.default, BaseModel)}
    return merge(defaults, raw)


def load_recipe(path: Path, overrides: list[str] = ()) -> Recipe:
    """Read, override and validate a recipe file; ``data.root`` is made absolute (relative to the cwd)."""
    path = Path(path)
    raw = read_yaml(path)
    if overrides:  # on top of the defaults, so --set model.decoder.params.x=1 keeps decoder.name
        raw = apply_overrides(_with_defaults(raw), list(overrides))
    recipe = validate(raw, str(path))
    recipe.data.root = recipe.data.root.expanduser().resolve()
    if any(parse_override(o)[0] == ["train", "steps"] for o in overrides):
        recipe.train.time_budget = None  # a step count asked for on the command line beats the recipe's time budget
    return recipe


def to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
