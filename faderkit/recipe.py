"""Recipes: YAML validated by pydantic, with dotted ``--set`` overrides from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from .errors import FaderkitError
from .params import BadParams, Strict, as_recipe, check, problems
from .plugins import registries
from .recipe_yaml import MAX_RECIPE_BYTES, apply_overrides, parse_override, read_yaml  # noqa: F401 (re-exported)
from .train_sections import FLAT_LOSS_FIELDS, LossSpec, TrainSection, moved_path, nest  # noqa: F401 (LossSpec, TrainSection: re-exported)


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
        None, description="optional image discriminator on decoded images (published code); weight: the patch term's "
        "in train.objective")


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
        o = self.train.objective
        if o.losses is not None:
            for key, default in FLAT_LOSS_FIELDS.items():
                if getattr(o, key) != default:
                    raise ValueError(f"train.objective.{key} and train.objective.losses both given: with losses, give "
                                     "each term's weight there (e.g. {name: edges, weight: 2}) and leave " + key + " out")
            names = [term.name for term in o.losses]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"train.objective.losses lists {', '.join(twice)} twice")
        patch, clf = (o.lambda_patch > 0, o.lambda_clf > 0) if o.losses is None else \
            (any(x.name == "patch" and x.weight > 0 for x in o.losses), any(x.name == "classifier" and x.weight > 0
                                                                            for x in o.losses))
        if patch and self.model.patch_discriminator is None:
            raise ValueError("the patch loss (train.objective.lambda_patch > 0) needs model.patch_discriminator, "
                             "e.g. {name: patch}")
        if clf and not self.classifier.enabled:
            raise ValueError("the classifier loss (train.objective.lambda_clf > 0) needs classifier.enabled: true")
        return self


#: Where a recipe names a registered component: (the section holding its ``name`` and ``params``, its kind).
COMPONENTS = (
    ("data", "dataset"),
    ("model.encoder", "encoder"),
    ("model.decoder", "decoder"),
    ("model.discriminator", "discriminator"),
    ("model.patch_discriminator", "image_discriminator"),
    ("classifier", "classifier"),
    ("train.objective.losses", "loss"),
)


def _format_error(found: list[tuple[tuple, str]], source: str) -> str:
    parts = [f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg for loc, msg in found]
    return f"invalid recipe {source}: " + "; ".join(parts)


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
        recipe = Recipe.model_validate(raw, context={"stored": stored})
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
    if isinstance(raw.get("train"), dict):  # a flat train section's keys in their groups, each noted once
        try:
            raw["train"] = nest(raw["train"])
        except ValueError as exc:
            raise FaderkitError(f"invalid recipe {path}: train: {exc}") from None
    overrides = [moved_override(o) for o in overrides]
    if overrides:  # on top of the defaults, so --set model.decoder.params.x=1 keeps decoder.name
        raw = apply_overrides(_with_defaults(raw), overrides)
    recipe = validate(raw, str(path))
    recipe.data.root = recipe.data.root.expanduser().resolve()
    if any(parse_override(o)[0] == ["train", "schedule", "steps"] for o in overrides):
        recipe.train.schedule.time_budget = None  # a step count asked for on the command line beats a time budget
    return recipe


def moved_override(text: str) -> str:
    """A ``--set`` naming a key where it was before the train section's groups, at its new place (noted once)."""
    path, _ = parse_override(text)
    new = moved_path(path)
    return text if new == path else ".".join(new) + "=" + text.partition("=")[2]


def to_yaml(recipe: Recipe) -> str:
    return yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False)
