"""The plugin manager: loads the ``faderkit`` entry points and fills one registry per kind."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from functools import lru_cache

import pluggy
from pydantic import BaseModel

from . import hookspecs
from .errors import FaderkitError
from .registry import Entry, Registry

ENTRY_POINT_GROUP = "faderkit"
#: Set to 1 to skip entry-point discovery (tests build their own manager).
DISABLE_AUTOLOAD_ENV = "FADERKIT_DISABLE_PLUGIN_AUTOLOAD"

KINDS = {
    "dataset": "faderkit_datasets",
    "encoder": "faderkit_encoders",
    "decoder": "faderkit_decoders",
    "discriminator": "faderkit_discriminators",
    "image_discriminator": "faderkit_image_discriminators",
    "classifier": "faderkit_classifiers",
    "face_locator": "faderkit_face_locators",
    "loss": "faderkit_losses",
    "executor": "faderkit_executors",
}


@dataclass
class Registries:
    """The registries of every kind, plus which plugin registered what."""

    by_kind: dict[str, Registry] = field(default_factory=dict)
    plugins: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> Registry:
        return self.by_kind[kind]

    @property
    def datasets(self) -> Registry:
        return self.by_kind["dataset"]


def make_plugin_manager(extra_plugins=(), autoload: bool | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("faderkit")
    pm.add_hookspecs(hookspecs)
    if autoload is None:
        autoload = os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("1", "true", "yes")
    if autoload:
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
        except Exception as exc:  # a broken third-party plugin must not hide the others' names
            raise FaderkitError(f"a faderkit plugin failed to load: {exc}") from exc
    for plugin in extra_plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def collect(pm: pluggy.PluginManager) -> Registries:
    """Call every plugin's hooks one by one, so each entry remembers the plugin that made it."""
    regs = Registries()
    for kind, hook_name in KINDS.items():
        reg: Registry = Registry(kind)
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin_name = pm.get_name(impl.plugin) or impl.plugin_name
            for entry in impl.function() or []:
                if not isinstance(entry, Entry):
                    raise FaderkitError(f"plugin '{plugin_name}' returned {entry!r} from {hook_name}; expected faderkit.Entry")
                model = entry.params
                if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
                    raise FaderkitError(f"plugin '{plugin_name}' gave {kind} '{entry.name}' params={entry.params!r}; "
                                        "expected a pydantic model class (a faderkit.Params subclass)")
                entry = replace(entry, plugin=plugin_name)
                reg.add(entry)
                regs.plugins.setdefault(plugin_name, []).append((kind, entry.name))
        regs.by_kind[kind] = reg
    for plugin in pm.get_plugins():
        regs.plugins.setdefault(pm.get_name(plugin), [])
    return regs


_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (entry points loaded on first use)."""
    global _manager
    if _manager is None:
        _manager = make_plugin_manager()
    return _manager


def register(plugin, name: str | None = None) -> None:
    """Register a plugin object or module in this process, e.g. a dataset defined in a notebook."""
    plugin_manager().register(plugin, name)
    plugin_manager().check_pending()
    registries.cache_clear()


def unregister(plugin) -> None:
    plugin_manager().unregister(plugin)
    registries.cache_clear()


@lru_cache(maxsize=1)
def registries() -> Registries:
    """The process-wide registries, built once from the installed plugins."""
    return collect(plugin_manager())
