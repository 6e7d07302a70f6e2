"""A self-describing run directory: resolved recipe, metrics log, samples, checkpoints, and a lock."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from .errors import FaderkitError


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.recipe = self.path / "recipe.yaml"
        self.metrics = self.path / "metrics.jsonl"
        self.samples = self.path / "samples"
        self.last = self.path / "last.safetensors"
        self.best = self.path / "best.safetensors"
        self.classifier = self.path / "classifier.safetensors"
        self._lock_fd: int | None = None

    def open(self, resume: bool) -> None:
        """Create (or, with ``resume``, reopen) the directory and take its lock."""
        if self.path.exists() and not self.path.is_dir():
            raise FaderkitError(f"run directory {self.path} is a file")
        if resume:
            if not self.last.exists():
                raise FaderkitError(f"nothing to resume in {self.path}: no last.safetensors (train without --resume)")
        elif self.path.exists() and any(self.path.iterdir()):
            raise FaderkitError(
                f"run directory {self.path} already holds a run; pass --resume to continue it or choose another --run-dir"
            )
        self.samples.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise FaderkitError(f"another faderkit process is training in {self.path}; wait for it or use another --run-dir") from None

    def close(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def log(self, record: dict) -> None:
        with open(self.metrics, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def truncate_metrics(self, step: int) -> None:
        """On resume: drop records written after the checkpoint we resume from (no duplicated steps)."""
        if not self.metrics.exists():
            return
        kept = []
        for line in self.metrics.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if rec.get("step", 0) <= step:
                kept.append(line)
        tmp = self.metrics.with_suffix(".tmp")
        tmp.write_text("".join(l + "\n" for l in kept))
        os.replace(tmp, self.metrics)

    def read_metrics(self) -> list[dict]:
        if not self.metrics.exists():
            return []
        out = []
        for line in self.metrics.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out
