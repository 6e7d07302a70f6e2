"""A sweep file: a base recipe, its variants (a grid or named lists of overrides), seeds, eval options, targets.

Everything is checked before anything runs: each variant x seed is resolved into a full recipe
here, so an unknown key, a bad value on any axis or a duplicate name is one error naming it.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ..errors import FaderkitError
from ..params import problems
from ..recipe import Recipe, Strict, load_recipe, read_yaml

#: A variant's name becomes a folder name: letters, digits and ``._=,+-`` only.
_SAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


class Variant(Strict):
    name: str = Field(min_length=1, max_length=100)
    set: dict[str, Any] = Field(default_factory=dict, description="dotted recipe overrides, e.g. train.objective.edge_weight: 2")


class EvalOptions(Strict):
    """What ``faderkit eval`` is given for every run."""

    split: str = "test"
    alpha: float = Field(1.0, gt=0.5, le=10)
    limit: int | None = Field(None, ge=1)
    gt_images: int = Field(100, ge=0)


class Target(Strict):
    """A bound on a report figure (its mean over seeds), for one variant or all of them."""

    figure: str = Field(min_length=1, description="a figure of the report, e.g. probe_gap.Male or recon_psnr")
    variant: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_bound(self):
        if self.min is None and self.max is None:
            raise ValueError(f"target {self.figure}: give min, max or both")
        return self


class ExecutorChoice(Strict):
    """Where the runs go. The command line's --executor, --jobs, --threads and -x KEY=VALUE override it."""

    name: str = Field("local", min_length=1, description="a registered executor: local, ray, submitit, ...")
    params: dict[str, Any] = Field(default_factory=dict, description="its options, as -x KEY=VALUE gives them "
                                   "(faderkit plugins --kind executor --params)")
    jobs: int | None = Field(None, ge=1, description="runs at a time (local; submitit: submitted at a time)")
    threads: int | None = Field(None, ge=1, description="CPU threads per run [default: the cores / jobs]")

    @model_validator(mode="after")
    def _jobs_apart(self):
        if "jobs" in self.params:
            raise ValueError("give the runs at a time as executor.jobs, not in executor.params")
        return self


class SweepSpec(Strict):
    name: str | None = Field(None, description="the folder under runs/ [default: the sweep file's name]")
    recipe: Path = Field(description="the base recipe, relative to the sweep file")
    set: dict[str, Any] = Field(default_factory=dict, description="overrides for every run")
    grid: dict[str, list[Any]] | None = Field(None, description="dotted key -> values; every combination is a variant")
    variants: list[Variant] | None = Field(None, description="named variants; the first is the reference")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    eval: EvalOptions = EvalOptions()
    targets: list[Target] = Field(default_factory=list)
    executor: ExecutorChoice | None = Field(None, description="where the runs go [default: local, one at a time]")

    @model_validator(mode="after")
    def _one_kind_of_axis(self):
        if self.grid is not None and self.variants is not None:
            raise ValueError("give either grid or variants, not both")
        for key, values in (self.grid or {}).items():
            if not values:
                raise ValueError(f"grid axis {key} has no values")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds {self.seeds} repeat a seed")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds {self.seeds}: seeds are whole numbers >= 0")
        return self

    def variant_list(self) -> list[Variant]:
        if self.variants is not None:
            return self.variants
        if not self.grid:
            return [Variant(name="base")]
        keys = list(self.grid)
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            name = ",".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in zip(keys, combo))
            out.append(Variant(name=name, set=dict(zip(keys, combo))))
        return out


def _short(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class PlannedRun:
    """One variant x seed: its folder name and its resolved recipe."""

    variant: str
    seed: int
    recipe: Recipe

    @property
    def name(self) -> str:
        return f"{self.variant}-s{self.seed}"


@dataclass
class Plan:
    name: str
    spec: SweepSpec
    variants: list[str]
    runs: list[PlannedRun]


def overrides(mapping: dict[str, Any]) -> list[str]:
    """``{"train.schedule.steps": 200}`` -> ``["train.schedule.steps=200"]`` (JSON is YAML, so every value reads back as given)."""
    return [f"{key}={json.dumps(value)}" for key, value in mapping.items()]


def read_spec(path: Path) -> SweepSpec:
    raw = read_yaml(path)
    if "recipe" in raw and isinstance(raw["recipe"], str):
        raw["recipe"] = str((Path(path).parent / raw["recipe"]))
    return parse_spec(raw, str(path))


def parse_spec(raw: dict, source: str) -> SweepSpec:
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        parts = [f"{'.'.join(str(p) for p in loc)}: {msg}" if loc else msg for loc, msg in problems(exc)]
        raise FaderkitError(f"invalid sweep {source}: " + "; ".join(parts)) from None


def plan(spec: SweepSpec, name: str, only: list[str] | None = None) -> Plan:
    """Every run of the sweep, its recipe resolved and validated; the first problem is one error naming it.

    ``only``: run just these variants (the first listed in the sweep stays the reference)."""
    if not name or _SAFE.search(name) or name in (".", ".."):
        raise FaderkitError(f"sweep name '{name}': use letters, digits and ._=,+- only")
    variants = spec.variant_list()
    seen: set[str] = set()
    for v in variants:
        if v.name in seen:
            raise FaderkitError(f"variant name '{v.name}' is used twice; give each variant its own name")
        if _SAFE.search(v.name) or v.name in (".", ".."):
            raise FaderkitError(f"variant name '{v.name}': use letters, digits and ._=,+- only (it names a folder)")
        seen.add(v.name)
    names = [v.name for v in variants]
    if only:
        unknown = [o for o in only if o not in seen]
        if unknown:
            raise FaderkitError(f"--only {','.join(unknown)}: no such variant; the variants are: {', '.join(names)}")
        variants = [v for v in variants if v.name in only]
    for t in spec.targets:
        if t.variant is not None and t.variant not in seen:
            raise FaderkitError(f"target {t.figure} names variant '{t.variant}'; the variants are: {', '.join(names)}")
    if not Path(spec.recipe).is_file():
        raise FaderkitError(f"the sweep's recipe {spec.recipe} is not a file")
    runs = []
    for v in variants:
        for seed in spec.seeds:
            sets = overrides(spec.set) + overrides(v.set) + [f"train.schedule.seed={seed}"]
            try:
                recipe = load_recipe(spec.recipe, sets)
            except FaderkitError as exc:
                raise FaderkitError(f"variant '{v.name}' (seed {seed}): {exc}") from None
            runs.append(PlannedRun(v.name, seed, recipe))
    return Plan(name, spec, [v.name for v in variants], runs)


def from_command_line(recipe: Path, grid: list[str], seeds: str, sets: list[str]) -> SweepSpec:
    """The small form: ``faderkit sweep RECIPE.yaml --grid train.objective.edge_weight=0,2,5 --seeds 0,1``."""
    import yaml

    axes: dict[str, list[Any]] = {}
    for text in grid:
        key, sep, values = text.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise FaderkitError(f"malformed --grid '{text}': expected KEY=V1,V2,..., e.g. train.objective.edge_weight=0,2,5")
        if key in axes:
            raise FaderkitError(f"--grid {key} is given twice; list all its values once")
        try:
            axes[key] = [yaml.safe_load(v) if v.strip() else None for v in values.split(",")]
        except yaml.YAMLError:
            raise FaderkitError(f"--grid {key}: values '{values}' are not readable as YAML") from None
    return parse_spec({"recipe": str(recipe), "grid": axes or None, "seeds": parse_seeds(seeds),
                       "set": parse_sets(sets)}, "from the command line")


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise FaderkitError(f"--seeds '{text}': expected whole numbers separated by commas, e.g. 0,1") from None


def parse_sets(sets, option: str = "--set", example: str = "train.schedule.steps=200") -> dict[str, Any]:
    """``KEY=VALUE`` texts as a mapping, each value read as YAML (``3`` an int, ``{a: 1}`` a mapping)."""
    import yaml

    fixed = {}
    for text in sets:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise FaderkitError(f"malformed {option} '{text}': expected KEY=VALUE, e.g. {example}")
        try:
            fixed[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            fixed[key.strip()] = value
    return fixed
