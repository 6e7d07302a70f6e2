"""``faderkit sweep``: a grid of recipes over seeds, run by a pluggable executor, compared in one report.

  spec.py       the sweep file (or the command line's --grid/--seeds), validated and planned into runs
  jobs.py       one run as an executor sees it: train or resume, then eval, each a faderkit process
  executors.py  the built-in executors local and ray (registered by plugins/executors, beside submitit)
  runner.py     the sweep folder, its lock, the jobs, then the report
  report.py     mean and spread over seeds, noise or real against the reference, targets; report.md/.json/plots
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .spec import Plan

#: Names handed on from the modules that define them, imported on first use: a worker that unpickles a
#: job imports only ``faderkit.sweep.jobs`` (torch stays out of it; it comes with the faderkit process).
_LAZY = {"run_sweep": "runner", "write_report": "runner", "Plan": "spec", "SweepSpec": "spec", "plan": "spec",
         "read_spec": "spec", "parse_spec": "spec", "from_command_line": "spec", "ExecutorChoice": "spec"}

__all__ = ["sweep", "load", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(source: str | Path, grid=(), seeds: str | None = None, sets=(), name: str | None = None,
         only: list[str] | None = None) -> Plan:
    """A planned sweep from a sweep file, or from a recipe plus ``--grid``/``--seeds``/``--set``."""
    from ..recipe import read_yaml
    from .spec import from_command_line, parse_seeds, parse_sets, parse_spec, plan, read_spec

    source = Path(source)
    raw = read_yaml(source)
    is_sweep = "recipe" in raw and not ({"data", "model", "train"} & set(raw))
    if is_sweep:
        if grid:
            from ..errors import FaderkitError
            raise FaderkitError(f"{source} is a sweep file; put the grid in it instead of --grid")
        spec = read_spec(source)
        if seeds is not None or sets:
            merged = spec.model_dump(mode="json", exclude_none=True)
            if seeds is not None:
                merged["seeds"] = parse_seeds(seeds)
            merged["set"] = {**merged.get("set", {}), **parse_sets(sets)}
            spec = parse_spec(merged, str(source))
        default_name = spec.name or source.stem
    else:
        spec = from_command_line(source, list(grid), seeds or "0", list(sets))
        default_name = source.stem
    return plan(spec, name or default_name, only)


def sweep(source: str | Path, root: str | Path = "runs", *, grid=(), seeds: str | None = None, sets=(),
          name: str | None = None, only: list[str] | None = None, executor: str | None = None, jobs: int | None = None,
          threads: int | None = None, executor_params: dict | None = None, log=lambda m: None) -> Path:
    """Plan and run a sweep; returns the path of its report.md. ``executor``, ``jobs``, ``threads`` and
    ``executor_params`` (None: the sweep file's ``executor`` section, else local, 1, the cores / jobs) override the
    file; its params are kept only when the same executor is named, ``executor_params`` go over them."""
    from .runner import run_sweep
    from .spec import ExecutorChoice

    plan = load(source, grid, seeds, sets, name, only)
    chosen = plan.spec.executor or ExecutorChoice()
    executor = executor or chosen.name
    params = {**(chosen.params if executor == chosen.name else {}), **(executor_params or {})}
    return run_sweep(plan, Path(root), executor, jobs or chosen.jobs or 1, threads or chosen.threads, params, log)
