"""A self-describing run directory: resolved recipe, metrics log, samples, checkpoints, and a lock."""

from __future__ import annotations

import json
from pathlib import Path

from . import atomic
from .atomic import remove_stale, write_text
from .errors import FaderkitError
from .tracking import Tracker


class RunDir:
    """The files of one training run, and the rules that keep them safe.

    - A directory holding a run is never trained into again without ``resume``.
    - One process at a time: :meth:`open` takes an exclusive lock, held until :meth:`close`.
    - Temporary files left by a killed writer are removed under the lock (see :mod:`faderkit.atomic`).
    - A run that fails before writing anything is removed again (:meth:`discard_if_unused`), so
      fixing the recipe and running the same command works.
    """

    #: What a run leaves before its first result: nothing a user could lose.
    SCAFFOLD = (".lock", "samples", "recipe.yaml")

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.recipe = self.path / "recipe.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.samples = self.path / "samples"
        self.last = self.path / "last.safetensors"
        self.best = self.path / "best.safetensors"
        self.classifier = self.path / "classifier.safetensors"
        self._lock_fd: int | None = None
        self._added: list[Path] = []
        self.tracker = Tracker(self.path, self.samples)  # TensorBoard events beside metrics.jsonl, when installed

    def open(self, resume: bool) -> None:
        """Create (or, with ``resume``, reopen) the directory and take its lock.

        ``resume`` continues from last.safetensors, or from step 0 when the run was stopped before
        its first checkpoint.
        """
        if self.path.exists() and not self.path.is_dir():
            raise FaderkitError(f"run directory {self.path} is a file")
        if resume and not self.path.is_dir():
            raise FaderkitError(f"nothing to resume: {self.path} does not exist (train without --resume)")
        lock = self.path / ".lock"
        self._added = [p for p in (*reversed(self.path.parents), self.path, self.samples, lock) if not p.exists()]
        try:
            self.samples.mkdir(parents=True, exist_ok=True)
            self._lock_fd = atomic.try_lock(lock)
        except OSError as exc:
            raise FaderkitError(f"cannot create run directory {self.path}: {exc.strerror or exc}") from None
        if self._lock_fd is None:
            raise FaderkitError(f"another faderkit process is training in {self.path}; wait for it or use another --run-dir") from None
        problem = None
        if resume:
            if not self.last.exists() and not self.recipe.exists() and not self.is_blank():
                problem = f"{self.path} holds no faderkit run (no recipe.yaml or last.safetensors); check --run-dir"
        elif not self.is_blank():
            problem = (f"run directory {self.path} already holds a run; pass --resume to continue it "
                       "or choose another --run-dir")
        if problem:
            self._remove_added()
            self.close()
            raise FaderkitError(problem)
        remove_stale(self.path)
        remove_stale(self.samples)

    def is_blank(self) -> bool:
        """Nothing but a lock and an empty samples folder: a run that never started."""
        for p in self.path.iterdir():
            if p.name == ".lock" or (p == self.samples and p.is_dir() and not any(p.iterdir())):
                continue
            return False
        return True

    def discard_if_unused(self) -> None:
        """After a failure: remove what :meth:`open` added, when the run wrote no results at all."""
        if not self.path.is_dir():
            return
        results = [p for p in self.path.iterdir() if p.name not in self.SCAFFOLD]
        if results or (self.samples.is_dir() and any(self.samples.iterdir())):
            return
        if self.recipe.exists() and self.recipe not in self._added:
            return  # written by an earlier (killed) start: keep it
        self._remove_added()

    def _remove_added(self) -> None:
        for p in reversed(self._added):
            try:
                p.rmdir() if p.is_dir() else p.unlink(missing_ok=True)
            except OSError:
                pass
        self._added = []

    def write_recipe(self, text: str) -> None:
        if not self.recipe.exists():
            self._added.append(self.recipe)
        write_text(self.recipe, text)

    def close(self) -> None:
        self.tracker.close()
        if self._lock_fd is not None:
            atomic.unlock(self._lock_fd)
            self._lock_fd = None

    def log(self, record: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
        self.tracker.log(record)

    def truncate_metrics(self, step: int) -> None:
        """On resume: drop records written after the checkpoint we resume from (no duplicated steps);
        lines that are not records (cut short by a crash, or edited by hand) go too."""
        self.tracker.purge_after(step)
        if self.metrics.exists():
            kept = [json.dumps(r) for r in read_records(self.metrics) if r["step"] <= step]
            write_text(self.metrics, "".join(line + "\n" for line in kept))

    def read_metrics(self) -> list[dict]:
        return read_records(self.metrics) if self.metrics.exists() else []


def read_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl: JSON objects with a whole-number step; partial, damaged or
    foreign lines are skipped."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        raise FaderkitError(f"cannot read {path}: {exc.strerror or exc}") from None
    out = []
    for line in text.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        step = rec.get("step") if isinstance(rec, dict) else None
        if isinstance(step, int) and not isinstance(step, bool) and 0 <= step < 10**12:
            out.append(rec)
    return out
