"""Writing a synthetic dataset: into a temporary folder renamed into place, in parallel, with a progress bar.

Shared by the generator plugins, so an interrupted run never leaves a folder that looks complete.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .errors import FaderkitError

#: Below this many items a process pool costs more than it saves.
POOL_MIN = 400
CHUNK = 100


def generate_on_first_use(root: str | Path, what: str, generate: Callable[..., None], count: int, seed: int,
                          marker: str) -> Path:
    """``root``, expanded; when it does not exist or is an empty folder, first filled by
    ``generate(root, count, seed=seed)`` with one line on stderr saying so (``what``: e.g. "toyfaces:
    ... synthetic faces"). Another process that generated it meanwhile (``root/marker`` is then
    there) is no error. An existing dataset is always read as it is, never overwritten."""
    root = Path(root).expanduser()
    if not root.exists() or (root.is_dir() and not any(root.iterdir())):
        name, _, things = what.partition(": ")
        print(f"{name}: no dataset at {root}; generating {count} {things} there (seed {seed})", file=sys.stderr, flush=True)
        try:
            generate(root, count, seed=seed)
        except FaderkitError:
            if not (root / marker).is_file():
                raise
    return root


def generate_dataset(name: str, out_dir: str | Path, count: int, seed: int = 0, layout: str | None = None) -> Path:
    """Write a synthetic copy of the registered dataset ``name`` into ``out_dir`` (``faderkit data``),
    in ``layout`` (one of the dataset class's ``layouts``; default: its first)."""
    from .plugins import registries  # the registries stand above this module, which plugins use

    entry = registries().datasets.get(name)
    if not entry.factory.can_generate():
        able = [e.name for e in registries().datasets.entries() if e.factory.can_generate()]
        raise FaderkitError(f"dataset '{name}' has no generator; these do: {', '.join(able) or 'none'}")
    layouts = tuple(getattr(entry.factory, "layouts", ()))
    if layout is not None and layout not in layouts:
        raise FaderkitError(f"dataset '{name}' has no layout '{layout}'; "
                            + (f"choose one of: {', '.join(layouts)}" if layouts else "it writes only one (omit --layout)"))
    entry.factory.generate(Path(out_dir), count, seed, **({"layout": layout} if layout else {}))
    return Path(out_dir)


def check_count_and_seed(what: str, count, seed, minimum: int, why: str) -> tuple[int, int]:
    """A generator's ``count`` (a whole number of at least ``minimum``, because ``why``) and ``seed``
    (a whole number >= 0), as ints; else a one-line FaderkitError naming ``what``."""
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < minimum:
        raise FaderkitError(f"{what} count must be an integer of at least {minimum} ({why}), not {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise FaderkitError(f"{what} seed must be a non-negative integer, not {seed!r}")
    return int(count), int(seed)


@contextmanager
def atomic_folder(out_dir: str | Path, what: str) -> Iterator[Path]:
    """Yield a private temporary folder beside ``out_dir``; on success it becomes ``out_dir``.

    ``out_dir`` must be missing or empty. On any failure the temporary folder is removed; an
    OSError (disk full, permissions) becomes a one-line FaderkitError naming ``what``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FaderkitError(f"{out_dir} already exists and is not empty; choose a new folder for the {what}")
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    except OSError as exc:
        raise FaderkitError(f"cannot write the {what} to {out_dir}: {exc.strerror or exc}") from None
    try:
        yield tmp
        for d in [tmp, *tmp.rglob("*")]:  # mkdtemp makes the folder private
            if d.is_dir():
                d.chmod(0o755)
        try:
            if out_dir.exists():
                out_dir.rmdir()  # empty (checked above); os.replace cannot move a folder onto one on every OS
            os.replace(tmp, out_dir)
        except OSError:
            if out_dir.exists() and any(out_dir.iterdir()):  # another process finished first
                raise FaderkitError(f"{out_dir} was filled by someone else while the {what} were being written") from None
            raise
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FaderkitError(f"cannot write the {what} to {out_dir}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_in_chunks(write_range: Callable[[tuple], list], folder: Path, seed: int, count: int, *,
                    workers: int, progress: bool, label: str) -> list:
    """``write_range((folder, seed, start, stop))`` over items 1..count in chunks; results concatenated in order.

    A fork pool runs the chunks when there are enough of them (fork, not spawn: spawn re-runs the
    caller's script, which breaks unguarded scripts).
    """
    chunks = [(str(folder), seed, s, min(s + CHUNK, count + 1)) for s in range(1, count + 1, CHUNK)]
    results: list = []
    with _progress(progress, count, label) as advance:
        if workers > 1 and count >= POOL_MIN and "fork" in get_all_start_methods() and sys.platform != "darwin":
            with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
                parts = pool.map(write_range, chunks)  # in order
                for part in parts:
                    results += part
                    advance(len(part))
        else:
            for chunk in chunks:
                part = write_range(chunk)
                results += part
                advance(len(part))
    return results


class _progress:
    """A rich progress bar on stderr (only on a terminal, and only if ``enabled``); yields ``advance(n)``."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled, total, label
        self.bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            console=console, disable=not console.is_terminal)
        self.bar.__enter__()
        task = self.bar.add_task("render", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False
