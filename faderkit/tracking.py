"""TensorBoard event files beside metrics.jsonl, when the ``tensorboard`` extra is installed.

Written from where metrics are recorded, not from the training loop: every record a run logs
(:meth:`faderkit.rundir.RunDir.log`) becomes scalars at its step, each sample grid that appeared in
``samples/`` since the last record becomes an image, and eval's report becomes scalars in its own
folder. ``tensorboard --logdir runs/<sweep>`` then compares the runs of a sweep.
``FADERKIT_TENSORBOARD=0`` turns it off; without the extra nothing is written and nothing fails.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DISABLE_ENV = "FADERKIT_TENSORBOARD"
_STEP = re.compile(r"step_(\d+)\.png$")


def available() -> bool:
    if os.environ.get(DISABLE_ENV, "") in ("0", "false", "no"):
        return False
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def scalars(record: dict, prefix: str = "") -> dict[str, float]:
    """Numbers of a (nested) record as ``a/b/c`` tags; text, flags and lists are left out."""
    out = {}
    for key, value in record.items():
        tag = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(scalars(value, tag + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and key != "step":
            out[tag] = float(value)
    return out


class Tracker:
    """A lazily opened SummaryWriter for one folder; every failure to write is swallowed (tracking is extra)."""

    def __init__(self, folder: Path, samples: Path | None = None):
        self.folder, self.samples = Path(folder), samples
        self._writer = None
        self._purge: int | None = None
        self._seen: set[str] = set()
        self.enabled: bool | None = None  # decided on the first record (importing tensorboard takes time)

    def purge_after(self, step: int) -> None:
        """On resume: events after ``step`` (the checkpoint resumed from) are hidden, as metrics.jsonl drops them."""
        self._purge = step

    def _open(self):
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.folder), flush_secs=30,
                                         purge_step=None if self._purge is None else self._purge + 1)
            if self.samples is not None and self.samples.is_dir():
                self._seen = {p.name for p in self.samples.glob("*.png")} if self._purge is None else set()
        return self._writer

    def log(self, record: dict, step: int | None = None) -> None:
        if self.enabled is None:
            self.enabled = available()
        if not self.enabled:
            return
        try:
            w = self._open()
            step = int(record.get("step", 0) if step is None else step)
            for tag, value in scalars(record).items():
                w.add_scalar(tag, value, step)
            self._add_new_samples(w)
        except Exception:  # noqa: BLE001 - a tracking problem must never stop training
            self.enabled = False

    def _add_new_samples(self, w) -> None:
        if self.samples is None or not self.samples.is_dir():
            return
        import numpy as np
        from PIL import Image

        for path in sorted(self.samples.glob("step_*.png")):
            m = _STEP.search(path.name)
            if path.name in self._seen or not m or (self._purge is not None and int(m.group(1)) <= self._purge):
                continue
            self._seen.add(path.name)
            with Image.open(path) as im:
                w.add_image("samples", np.asarray(im.convert("RGB")), int(m.group(1)), dataformats="HWC")

    def close(self) -> None:
        if self._writer is not None:
            try:
                self._add_new_samples(self._writer)  # a grid saved after the last record
                self._writer.close()
            except Exception:  # noqa: BLE001
                pass
            self._writer = None


def log_report(report: dict, folder: Path, figures) -> None:
    """Eval's figures (``figures(report)``) as scalars at the checkpoint's step, in the report's folder;
    like all tracking, never a reason for eval to fail."""
    t = Tracker(folder)
    if not available():
        return
    try:
        figures = figures(report)
    except Exception:  # noqa: BLE001
        return
    step = report.get("checkpoint", {}).get("step") or 0
    t.log({f"eval/{k.replace('.', '/')}": v for k, v in figures.items()}, step=step)
    t.close()
