"""The built-in executors, ``local`` and ``ray``: each runs :func:`faderkit.sweep.jobs.execute` on every job.

An executor is any object with ``run(jobs, done)``: call ``execute(job)`` for each job, wherever the
executor likes, and ``done(result)`` in this process as each one finishes. It is registered through
the ``faderkit_executors`` hook (see ``plugins/executors``), exactly as a third-party one would be.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable

from pydantic import Field

from ..errors import FaderkitError
from ..params import Params
from .jobs import Job, execute, lost


class LocalParams(Params):
    jobs: int = Field(1, ge=1, description="runs at a time; each gets the cores divided among them")


class LocalExecutor:
    """Runs the jobs on this machine, ``jobs`` at a time, each a process with its share of the cores."""

    def __init__(self, jobs: int = 1):
        self.jobs = max(1, int(jobs))

    def run(self, jobs: list[Job], done: Callable[[dict], None]) -> None:
        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            for future in as_completed([pool.submit(execute, job) for job in jobs]):
                done(future.result())


class RayParams(Params):
    jobs: int = Field(1, ge=1, description="ignored: Ray places the runs by the CPUs each asks for")
    address: str | None = Field(None, description="auto (a running cluster), HOST:PORT, or none: start a local Ray")


class RayExecutor:
    """Runs each job as a Ray task asking for ``threads`` CPUs; the sweep folder must be on a filesystem
    every node sees."""

    def __init__(self, jobs: int = 1, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise FaderkitError("the ray executor needs Ray: pip install 'faderkit[ray]'") from None
        self.ray, self.address = ray, address

    def run(self, jobs: list[Job], done: Callable[[dict], None]) -> None:
        ray = self.ray
        started_here = not ray.is_initialized()
        if started_here:
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except ConnectionError as exc:
                raise FaderkitError(f"cannot reach a Ray cluster at {self.address}: {exc}") from None
        try:
            task = ray.remote(execute)
            pending = {task.options(num_cpus=job.threads, max_retries=0).remote(job.to_dict()): job for job in jobs}
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        done(ray.get(ref))
                    except ray.exceptions.RayError as exc:  # the worker died: record it, keep the others going
                        done(lost(job, "ray", str(exc)))
        finally:
            if started_here:
                ray.shutdown()
