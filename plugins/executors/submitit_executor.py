"""The ``submitit`` executor: each run of a sweep is a SLURM job, submitted and watched through submitit.

It uses nothing but what a third-party executor has: :func:`faderkit.sweep.jobs.execute` is the job
(train or resume, then eval, into the run's directory; the same function the local executor calls),
and :func:`faderkit.sweep.jobs.lost` records a job the cluster lost. The sweep's folder must be on a
filesystem the compute nodes share. ``cluster: local`` runs the jobs as local processes through
submitit's own local executor (that is how the tests run it); ``debug`` runs them one by one in this
process. A local job's controller process writes its standard error to ``controller.err`` in submitit's
folder: a Ctrl-C reaches it too, and its traceback is not the user's to read.
"""

from __future__ import annotations

import os
import re
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable, Literal

from pydantic import Field

from faderkit import FaderkitError, Params
from faderkit.sweep.jobs import Job, execute, lost

#: How often the unfinished jobs are looked at, seconds (on SLURM submitit asks sacct itself, at most
#: once a minute or so, and sees a finished job at once by its result file).
POLL_S = 0.25


class SubmititParams(Params):
    jobs: int = Field(1, ge=1, description="runs submitted at a time (--jobs); the next one as one ends")
    cluster: Literal["auto", "slurm", "local", "debug"] = Field(
        "auto", description="auto: SLURM where srun is found, else local processes; debug: in this process, "
                            "one at a time (a crash stops in pdb)")
    partition: str | None = Field(None, description="SLURM partition (default: the cluster's)")
    timeout_min: int = Field(240, ge=1, le=525600, description="time limit of each run, minutes")
    mem_gb: float | None = Field(None, gt=0, description="memory of each run, GB (default: the cluster's)")
    gpus_per_node: int = Field(0, ge=0, le=64, description="GPUs of each run (CPUs: the sweep's --threads)")
    account: str | None = Field(None, description="SLURM account to charge")
    qos: str | None = Field(None, description="SLURM quality of service")
    slurm: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="further sbatch options as they are, e.g. {constraint: a100, "
                                          "exclude: node7} (submitit's slurm_additional_parameters)")
    setup: list[str] = Field(default_factory=list,
                             description="shell lines run before each run, e.g. source venv/bin/activate")
    folder: Path | None = Field(None, strict=False,
                                description="submitit's scripts, pickles and logs (default: runs/<sweep>/submitit)")


class SubmititExecutor:
    """Submits each job with ``cpus_per_task`` = its threads, at most ``jobs`` unfinished at a time."""

    def __init__(self, jobs: int = 1, cluster: str = "auto", partition: str | None = None, timeout_min: int = 240,
                 mem_gb: float | None = None, gpus_per_node: int = 0, account: str | None = None,
                 qos: str | None = None, slurm: dict = {}, setup: tuple[str, ...] = (),  # noqa: B006 (read only)
                 folder: Path | None = None):
        try:
            import submitit
        except ImportError:
            raise FaderkitError("the submitit executor needs submitit: pip install 'faderkit[submitit]'") from None
        self.submitit, self.jobs, self.cluster, self.folder = submitit, max(1, int(jobs)), cluster, folder
        setup = list(setup or [])
        self.options = dict(timeout_min=timeout_min, mem_gb=mem_gb, gpus_per_node=gpus_per_node,
                            slurm_partition=partition, slurm_account=account, slurm_qos=qos,
                            slurm_additional_parameters=dict(slurm or {}) or None,
                            slurm_setup=setup or None, local_setup=setup or None)

    def _executor(self, folder: Path):
        try:
            ex = self.submitit.AutoExecutor(folder=folder, cluster=None if self.cluster == "auto" else self.cluster)
            ex.update_parameters(**{k: v for k, v in self.options.items() if v is not None})
        except (RuntimeError, ValueError, NameError, OSError) as exc:  # no cluster found; an option it refuses
            raise FaderkitError(f"submitit ({self.cluster}): {_one_line(exc)}") from None
        return ex

    def run(self, jobs: list[Job], done: Callable[[dict], None]) -> None:
        folder = Path(self.folder or Path(jobs[0].run_dir).parent / "submitit")
        ex = self._executor(folder)
        # submitit's local controller (one process per job, started by submit) is in this terminal's process
        # group: a Ctrl-C interrupts it as well, and it prints its own traceback on the way out
        quiet = _stderr_to(folder / "controller.err") if getattr(ex, "cluster", None) == "local" else nullcontext()
        waiting, running = list(jobs), {}
        try:
            while waiting or running:
                while waiting and len(running) < self.jobs:
                    job = waiting.pop(0)
                    ex.update_parameters(name=f"faderkit-{job.name}", cpus_per_task=job.threads)
                    try:
                        with quiet:
                            running[ex.submit(execute, job.to_dict())] = job
                    except Exception as exc:  # sbatch refused it (a bad partition, account, time): stop here
                        raise FaderkitError(f"submitit could not submit {job.name}: {_one_line(exc)}") from None
                finished = [sj for sj in running if _finished(sj)]
                for sj in finished:
                    done(_outcome(sj, running.pop(sj)))
                if not finished:
                    time.sleep(POLL_S)
        finally:  # interrupted (or a submission refused): leave no job of this sweep queued or running
            for sj in running:
                sj.cancel(check=False)


class _stderr_to:
    """Processes started inside the block write their standard error (file descriptor 2) to ``path``; this
    process's own is put back at the end of the block. Reusable."""

    def __init__(self, path: Path):
        self.path, self.saved = Path(path), None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sys.stderr.flush()
        self.saved = os.dup(2)
        with open(self.path, "ab") as f:
            os.dup2(f.fileno(), 2)
        return self

    def __exit__(self, *exc) -> None:
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)


def _finished(sj) -> bool:
    try:
        return sj.done()
    except Exception:  # a debug job runs (and fails) inside done(); its result says how
        return True


def _outcome(sj, job: Job) -> dict:
    try:
        return sj.result()
    except Exception as exc:  # killed (time, memory, node lost) or crashed: record it, keep the others going
        return lost(job, "submitit", f"{_one_line(exc)} (submitit log: {sj.paths.stderr})")


_EXCEPTION_LINE = re.compile(r"^\s*[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def _one_line(exc: BaseException) -> str:
    """What went wrong, in one line: the last exception line of a traceback submitit quotes, else the
    exception's name and first line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    raised = [ln for ln in lines if _EXCEPTION_LINE.match(ln)]
    return (raised[-1] if raised else f"{type(exc).__name__}: {lines[0] if lines else ''}")[:300]
