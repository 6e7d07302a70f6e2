"""One run of a sweep, as an executor sees it: train (or resume), then eval, each a ``faderkit`` process.

A job touches nothing but its own run directory, its log and its status file, all under the sweep's
folder: the run directories are the only shared state, so any executor whose workers see that
folder (one machine, or a cluster's shared filesystem) can run it. A job is plain data, so it
pickles to a remote worker; :func:`execute` is what the worker calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Job:
    name: str
    run_dir: str
    recipe_file: str
    eval_dir: str
    eval_args: list[str] = field(default_factory=list)
    threads: int = 1
    log_file: str = ""
    status_file: str = ""
    python: str = sys.executable

    @property
    def checkpoint(self) -> Path:
        """The run's best.safetensors, which its eval reads."""
        return Path(self.run_dir) / "best.safetensors"

    def to_dict(self) -> dict:
        return asdict(self)


def trained(job: Job) -> bool:
    """Its status says trained and the checkpoint is still there (a run folder removed by hand is trained again)."""
    return bool(read_status(job).get("trained")) and job.checkpoint.is_file()


def evaluated(job: Job) -> bool:
    return (Path(job.eval_dir) / "report.json").is_file()


def read_status(job: Job) -> dict:
    try:
        return json.loads(Path(job.status_file).read_text())
    except (OSError, ValueError):
        return {}


def _write_status(job: Job, status: dict) -> None:
    path = Path(job.status_file)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_text(json.dumps(status, indent=1) + "\n")
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)  # the disk is full: the next start finds the run unfinished and resumes it


def _run(job: Job, argv: list[str]) -> str | None:
    """Run one faderkit command; None when it succeeded, else the line that says why it failed."""
    env = {**os.environ, "OMP_NUM_THREADS": str(job.threads), "MKL_NUM_THREADS": str(job.threads)}
    with open(job.log_file, "ab") as log:
        log.write(f"$ faderkit {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.run([job.python, "-m", "faderkit.cli", *argv], stdout=log, stderr=subprocess.PIPE, env=env)
        log.write(proc.stderr)
    if proc.returncode == 0:
        return None
    lines = [ln.strip() for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("Error:")]
    why = (errors or lines or [f"exit status {proc.returncode}"])[-1]
    return f"{why} (exit status {proc.returncode}; log: {job.log_file})"


def _failed(job: Job, status: dict, stage: str, error: str) -> dict:
    status.update(state="failed", stage=stage, error=error)
    _write_status(job, status)
    return {"name": job.name, **status}


def lost(job: Job | dict, stage: str, error: str) -> dict:
    """Record a job its executor lost (the worker died; the cluster killed it, out of time or memory) as
    failed at ``stage`` with ``error`` (one line), as :func:`execute` records a failing command: the
    report lists it and the next start of the sweep resumes it."""
    job = Job(**job) if isinstance(job, dict) else job
    return _failed(job, read_status(job), stage, " ".join(str(error).split())[:300])


def execute(job: Job | dict) -> dict:
    """Train the job's run (resuming what a killed start left) unless done, then eval it unless done."""
    job = Job(**job) if isinstance(job, dict) else job
    status = read_status(job)
    t0 = time.perf_counter()
    if not trained(job):
        argv = ["train", job.recipe_file, "--run-dir", job.run_dir, "--quiet"]
        if Path(job.run_dir).is_dir():
            argv.append("--resume")
        error = _run(job, argv)
        if error:
            return _failed(job, status, "train", error)
        status.update(trained=True, train_seconds=round(time.perf_counter() - t0, 1))
        _write_status(job, status)
    if not evaluated(job):
        t1 = time.perf_counter()
        ckpt = str(job.checkpoint)
        error = _run(job, ["eval", ckpt, "--out", job.eval_dir, "--threads", str(job.threads), "--quiet",
                           *job.eval_args])
        if error:
            return _failed(job, status, "eval", error)
        status["eval_seconds"] = round(time.perf_counter() - t1, 1)
    status.update(state="done", error=None, stage=None)
    _write_status(job, status)
    return {"name": job.name, **status}
