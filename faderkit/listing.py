"""What ``faderkit plugins`` prints: the registered components by plugin, and the params each one takes."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .errors import FaderkitError
from .params import describe
from .plugins import KINDS


def print_plugins(regs, kind: str | None = None) -> None:
    """One table: each plugin, the kind and name of what it registers, and one line saying what it is."""
    table = Table(title="faderkit plugins", caption="`faderkit plugins --params [NAME]`: the params each one takes")
    for col in ("plugin", "kind", "name", "what it is"):
        table.add_column(col)
    for plugin, items in sorted(regs.plugins.items()):
        if not items:
            table.add_row(plugin, "-", "-", "(registers nothing)")
        for item_kind, name in items:
            if kind in (None, item_kind):
                table.add_row(plugin, item_kind, name, regs[item_kind].get(name).summary)
    Console().print(table)


def print_params(regs, pattern: str, kind: str | None) -> None:
    """One table per component matching ``pattern``: its params with type, default and description."""
    console = Console()
    kinds = [kind] if kind else list(KINDS)
    found = [(k, regs[k].get(n)) for k in kinds for n in regs[k].list(pattern)]
    if not found:
        names = sorted({n for k in kinds for n in regs[k].list()})
        raise FaderkitError(f"no {kind or 'component'} named '{pattern}'; registered: {', '.join(names) or 'none'}")
    for item_kind, entry in found:
        title = Text.assemble(f"{item_kind} ", (entry.name, "bold"), f" (plugin {entry.plugin}): {entry.summary}")
        if entry.params is None:
            console.print(title)
            console.print("  declares no params model: its params go to its factory as written", highlight=False)
            continue
        table = Table(title=title, title_justify="left")
        for col in ("param", "type", "default", "description"):
            table.add_column(col, overflow="fold")
        for row in describe(entry.params):
            table.add_row(*map(Text, row))
        if not entry.params.model_fields:
            table.add_row("-", "-", "-", "(takes no params)")
        console.print(table)
