"""Writing a file so that a crash, a kill or a full disk never leaves it half-written.

The bytes go to a temporary file beside the target (``.<name>.tmp<pid>``), are flushed (and, for
what must survive a power cut, fsynced), then renamed over the target in one step. On failure the
temporary file is removed and the target is untouched. A process killed mid-write can leave only
the temporary file, which :func:`remove_stale` clears.
"""

from __future__ import annotations

import fcntl
import os
import re
from pathlib import Path
from typing import Callable, IO

from .errors import FaderkitError

_TMP = re.compile(r"^\..+\.tmp\d*$")


def temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write(path: str | Path, data: bytes | Callable[[IO[bytes]], None], *, fsync: bool = False,
          what: str = "") -> None:
    """Write ``data`` (bytes, or a function writing to a binary file) to ``path`` atomically.

    An OSError (disk full, permissions) becomes a one-line FaderkitError naming ``what`` (default
    the path) and saying the previous file is intact.
    """
    path = Path(path)
    tmp = temp_name(path)
    try:
        with open(tmp, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            kept = "; the previous one is intact" if path.exists() else ""
            raise FaderkitError(f"cannot write {what or path}: {exc.strerror or exc}{kept}") from None
        raise


def write_text(path: str | Path, text: str, **kwargs) -> None:
    write(path, text.encode("utf-8"), **kwargs)


def make_writable_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents) and prove a file can be written there; raises OSError."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test.{os.getpid()}"
    probe.write_bytes(b"")
    probe.unlink()


def remove_stale(folder: Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by a killed writer (call only while holding its lock)."""
    removed = []
    if folder.is_dir():
        for p in folder.iterdir():
            if p.is_file() and _TMP.match(p.name):
                p.unlink(missing_ok=True)
                removed.append(p)
    return removed


def try_lock(path: Path) -> int | None:
    """An exclusive lock on the file ``path`` (created if need be): its descriptor, to give to :func:`unlock`, or
    None when another process holds it. An OSError creating the file is the caller's to report."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)
