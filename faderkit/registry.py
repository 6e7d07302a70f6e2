"""One registry per kind of component, keyed by name, filled from the plugins' hooks."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Mapping, TypeVar

from .errors import FaderkitError
from .params import resolve

if TYPE_CHECKING:
    from pydantic import BaseModel

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """What a plugin registers: a name, the factory that builds it, one line saying what it is, and
    (optionally) the pydantic model of its params (see :mod:`faderkit.params`)."""

    name: str
    factory: Callable[..., T]
    summary: str = ""
    plugin: str = "?"
    params: type[BaseModel] | None = None


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

    def create(self, name: str, *args: Any, params: Mapping[str, Any] | None = None, **kwargs: Any) -> T:
        """``factory(*args, **kwargs, **params)``. ``params`` (a recipe's) are checked first against the
        entry's params model, defaults filled in, and so are keywords named like one of its params;
        the other arguments (the caller's own, such as ``arch`` or a dataset's ``image_size``) are
        passed as they are."""
        entry = self.get(name)
        params = dict(params or {})
        if entry.params is not None:
            params.update({k: kwargs.pop(k) for k in list(kwargs) if k in entry.params.model_fields})
        return entry.factory(*args, **kwargs, **resolve(self.kind, entry, params))

    def entries(self) -> Iterable[Entry[T]]:
        return (self._entries[n] for n in self.list())

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
