"""The core's import graph has floors: no module imports, even lazily inside a function, one that
imports it back, so every module stands above all it uses. The one documented exception is the
package root's lazy ``faderkit.load`` (it imports the editor, which stands above the root's names).
"""

from __future__ import annotations

import ast
from pathlib import Path

import faderkit

CORE = Path(faderkit.__file__).resolve().parent
#: (importer, imported) pairs allowed to point up: documented lazy loads.
LAZY_UP = {("faderkit", "faderkit.editor")}


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the core modules it imports anywhere in its text (a package: its ``__init__``).
    Importing ``a.b.c`` runs ``a.b`` too, so that is an edge; the root ``faderkit`` only hands names on."""
    files = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                if target in files:
                    found.add(target)
                    parent = target.rpartition(".")[0]
                    while parent not in ("", "faderkit"):
                        found.add(parent)
                        parent = parent.rpartition(".")[0]
        found.discard(name)
        graph[name] = {t for t in found if (name, t) not in LAZY_UP and not name.startswith(t + ".")}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle of ``graph`` (its modules in order), or None when it has floors."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (circle := visit(nxt, path + [nxt])):
                return circle
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start, [start])):
            return circle
    return None


def test_the_graph_is_read():
    graph = import_graph()
    assert "faderkit.plugins" in graph["faderkit.recipe"]
    assert "faderkit.train" in graph["faderkit.cli"]          # a lazy import inside a function counts too
    assert "faderkit.serve" in graph["faderkit.serve.app"] or "faderkit.serve.console" in graph["faderkit.serve.app"]


def test_the_circle_finder_finds_one():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_core_has_no_import_circle():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)
