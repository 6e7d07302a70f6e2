"""Running a planned sweep: its folder and lock, the jobs handed to an executor, then the report.

``runs/<sweep>/`` holds ``.lock`` (one sweep at a time), ``sweep.yaml`` (the spec as given),
``recipes/<run>.yaml`` (each run's resolved recipe), ``status/<run>.json`` (trained? failed, and
why), ``logs/<run>.log``, the run directories ``<variant>-s<seed>/`` with their ``eval_<split>/``, and
the report. A finished run (status says trained) is never trained again and a finished eval
(report.json present) never repeated, so a sweep killed at any point is simply started again.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

import yaml

from .. import atomic
from ..errors import FaderkitError
from ..recipe import as_resolved, to_yaml
from . import report as report_mod
from ..evaluate.figures import figures
from .jobs import Job, evaluated, read_status, trained
from .spec import Plan, overrides


class SweepLock:
    """An exclusive lock on ``<sweep>/.lock``: a second sweep into the same folder is refused."""

    def __init__(self, folder: Path):
        self.folder, self.fd = folder, None

    def __enter__(self):
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.fd = atomic.try_lock(self.folder / ".lock")
        except OSError as exc:
            raise FaderkitError(f"cannot create the sweep folder {self.folder}: {exc.strerror or exc}") from None
        if self.fd is None:
            raise FaderkitError(f"another faderkit sweep is running in {self.folder}; wait for it or give "
                                "another --name") from None
        return self

    def __exit__(self, *exc):
        atomic.unlock(self.fd)


def threads_per_run(jobs: int, threads: int | None) -> int:
    return threads or max(1, (os.cpu_count() or 1) // jobs)


def _unthreaded(text: str) -> dict:
    """A resolved recipe without train.speed.threads, which changes speed only (--jobs may differ between starts);
    one written before the train section's groups is read in them."""
    raw = as_resolved(yaml.safe_load(text) or {})
    ((raw.get("train") or {}).get("speed") or {}).pop("threads", None)
    return raw


def make_jobs(plan: Plan, folder: Path, threads: int) -> list[Job]:
    """Write each run's resolved recipe (refusing one that changed under a run already started) and its job."""
    ev = plan.spec.eval
    eval_args = ["--split", ev.split, "--alpha", str(ev.alpha), "--gt-images", str(ev.gt_images)]
    if ev.limit:
        eval_args += ["--limit", str(ev.limit)]
    jobs = []
    for d in ("recipes", "status", "logs"):
        (folder / d).mkdir(exist_ok=True)
    for run in plan.runs:
        run.recipe.train.speed.threads = threads
        text = to_yaml(run.recipe)
        recipe_file = folder / "recipes" / f"{run.name}.yaml"
        run_dir = folder / run.name
        if recipe_file.exists() and run_dir.exists() and _unthreaded(recipe_file.read_text()) != _unthreaded(text):
            raise FaderkitError(f"run {run_dir} was started from another recipe than the sweep now gives it "
                                f"({recipe_file}); give the sweep another --name, or remove that run to redo it")
        atomic.write_text(recipe_file, text)
        jobs.append(Job(name=run.name, run_dir=str(run_dir), recipe_file=str(recipe_file),
                        eval_dir=str(run_dir / f"eval_{ev.split}"), eval_args=eval_args, threads=threads,
                        log_file=str(folder / "logs" / f"{run.name}.log"),
                        status_file=str(folder / "status" / f"{run.name}.json"), python=sys.executable))
    return jobs


def run_sweep(plan: Plan, root: Path, executor: str = "local", jobs: int = 1, threads: int | None = None,
              executor_params: dict | None = None, log: Callable[[str], None] = lambda m: None) -> Path:
    """Run every unfinished run of ``plan`` under ``root/<name>`` and write the report; returns report.md."""
    from ..plugins import registries

    # an unknown executor, a bad option of it or its missing package is refused before anything is made
    runner = registries()["executor"].create(executor, params=dict(executor_params or {}), jobs=jobs)
    folder = Path(root) / plan.name
    n = threads_per_run(jobs, threads)
    with SweepLock(folder):
        todo = make_jobs(plan, folder, n)
        spec = plan.spec.model_dump(mode="json", exclude_none=True)
        atomic.write_text(folder / "sweep.yaml", yaml.safe_dump(spec, sort_keys=False))
        pending = [j for j in todo if not (trained(j) and evaluated(j))]
        log(f"sweep {folder}: {len(plan.runs)} runs, {len(plan.runs) - len(pending)} already done; "
            f"executor {executor}, {jobs} at a time, {n} thread(s) each")
        t0 = time.perf_counter()
        if pending:
            def done(result: dict) -> None:
                what = "done" if result.get("state") == "done" else f"FAILED in {result.get('stage')}: {result.get('error')}"
                log(f"  {result['name']}: {what}")

            runner.run(pending, done)
        log(f"sweep ran {time.perf_counter() - t0:.1f} s")
        return write_report(plan, folder, todo)


def write_report(plan: Plan, folder: Path, jobs: list[Job]) -> Path:
    import json

    results, figs = {}, {}
    for run, job in zip(plan.runs, jobs):
        status = read_status(job)
        results[run.name] = {"variant": run.variant, "seed": run.seed, **status}
        if status.get("state") == "done" and evaluated(job):
            figs[run.name] = figures(json.loads((Path(job.eval_dir) / "report.json").read_text()))
    targets = [t.model_dump() for t in plan.spec.targets]
    summary = report_mod.summarise(plan.variants, results, figs, targets)
    summary["overrides"] = {"all": overrides(plan.spec.set),
                            **{v.name: overrides(v.set) for v in plan.spec.variant_list()}}
    return report_mod.write(summary, folder, plan.name)
