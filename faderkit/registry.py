"""One registry per kind of component, keyed by name, filled from the plugins' hooks."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, TypeVar

from .errors import FaderkitError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """What a plugin registers: a name, the factory that builds it, and one line saying what it is."""

    name: str
    factory: Callable[..., T]
    summary: str = ""
    plugin: str = "?"


class Registry(Generic[T]):
    """Named factories of one kind. Duplicate names are refused; unknown names list the choices."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def add(self, entry: Entry[T]) -> None:
        if entry.name in self._entries:
            other = self._entries[entry.name].plugin
            raise FaderkitError(
                f"{self.kind} '{entry.name}' is registered twice (by plugin '{other}' and by '{entry.plugin}')"
            )
        self._entries[entry.name] = entry

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> Entry[T]:
        try:
            return self._entries[name]
        except KeyError:
            choices = ", ".join(self.list()) or "none registered"
            raise FaderkitError(f"unknown {self.kind} '{name}'; choose one of: {choices}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> T:
        return self.get(name).factory(*args, **kwargs)

    def entries(self) -> Iterable[Entry[T]]:
        return (self._entries[n] for n in self.list())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
