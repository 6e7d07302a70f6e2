"""A recipe's YAML before validation: the file read with care, and dotted ``--set`` overrides applied to the
raw mapping (by key, or in a list of named terms by name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import FaderkitError


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.schedule.steps=200`` -> (["train", "schedule", "steps"], 200); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not p for p in key.split(".")):
        raise FaderkitError(f"malformed --set '{text}': expected KEY=VALUE, e.g. train.schedule.steps=200")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def _item(items: list, part: str, text: str):
    """An item of a list in a recipe, by its index or (a list of named terms) its name."""
    if part.isdigit() and int(part) < len(items):
        return items[int(part)]
    named = [x for x in items if isinstance(x, dict) and x.get("name") == part]
    if len(named) == 1:
        return named[0]
    names = [x.get("name") for x in items if isinstance(x, dict) and x.get("name")]
    raise FaderkitError(f"--set {text}: no item '{part}' in that list; give an index below {len(items)}"
                        + (f" or a name: {', '.join(map(str, names))}" if names else ""))


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = raw
        for part in path[:-1]:
            child = _item(node, part, text) if isinstance(node, list) else node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, (dict, list)):
                raise FaderkitError(f"--set {text}: '{part}' is a value, not a section")
            node = child
        if isinstance(node, list):
            raise FaderkitError(f"--set {text}: '{path[-2]}' is a list; name an item and its key, "
                                f"e.g. {'.'.join(path[:-1])}.0.weight or, for a list of terms, {'.'.join(path[:-1])}.edges.weight")
        node[path[-1]] = value
    return raw


#: A recipe is a few hundred bytes; refuse anything absurd before reading it.
MAX_RECIPE_BYTES = 1 << 20


def read_yaml(path: Path) -> dict:
    path = Path(path)
    if path.exists() and not path.is_file():
        raise FaderkitError(f"recipe {path} is not a regular file; give a YAML file")
    if path.is_file() and path.stat().st_size > MAX_RECIPE_BYTES:
        raise FaderkitError(f"recipe {path} is {path.stat().st_size:,} bytes; a recipe is a small YAML file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaderkitError(f"cannot read recipe {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise FaderkitError(f"recipe {path} is not UTF-8 text (byte {exc.start}); give a YAML file") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise FaderkitError(f"recipe {path} is nested too deeply to be a recipe") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise FaderkitError(f"recipe {path} is not valid YAML{where}: {problem}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FaderkitError(f"recipe {path} must be a mapping of sections (data, model, train, ...)")
    return raw
