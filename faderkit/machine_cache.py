"""faderkit's measurements of this machine (precision.json, cpuconv.json): where they live, how they are read and
updated. A missing, damaged or unwritable file is never an error: the measurement is simply made again."""

from __future__ import annotations

import json
import os
from pathlib import Path

from . import atomic
from .errors import FaderkitError


def cache_file(name: str) -> Path:
    """``$FADERKIT_CACHE_DIR/<name>``, else ``faderkit/<name>`` in the user's cache folder (``$XDG_CACHE_HOME``)."""
    if os.environ.get("FADERKIT_CACHE_DIR"):
        return Path(os.environ["FADERKIT_CACHE_DIR"]) / name
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "faderkit" / name


def read(path: Path) -> dict:
    """The file's top-level object; {} when it is missing or not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def store(path: Path, key: str, value, merge: bool = False) -> None:
    """Set ``key`` to ``value`` in the file, keeping its other keys (read again now: another process may have
    written since), replaced atomically. ``merge``: ``value`` (a dict) is merged into the object stored under
    ``key`` instead of replacing it, so one read serves both levels."""
    path = Path(path)
    data = read(path)
    if merge and isinstance(data.get(key), dict):
        value = {**data[key], **value}
    data[key] = value
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except (OSError, FaderkitError):
        pass  # a read-only home: measured again next time
