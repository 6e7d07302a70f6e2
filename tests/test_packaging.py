"""The wheel's contents cannot drift from the source tree: every package and data file is declared.

(scripts/wheel_smoke.sh, run by CI, then builds the wheel and uses it from outside the tree.)
"""

from __future__ import annotations

import fnmatch
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: A separate distribution (its own pyproject.toml), not part of faderkit's wheel.
OWN_DISTRIBUTIONS = ("plugins/example_plugin",)


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _source_dir(package: str, package_dir: dict[str, str]) -> Path:
    top, _, rest = package.partition(".")
    return ROOT / package_dir.get(top, top) / rest.replace(".", "/")


def _tracked(folder: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", folder], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in out.splitlines()
            if not any(line.startswith(own + "/") for own in OWN_DISTRIBUTIONS)]


def _packages_on_disk(package_dir: dict[str, str]) -> set[str]:
    found = set()
    for name, folder in {"faderkit": "faderkit", **package_dir}.items():
        for init in _tracked(folder):
            if init.name == "__init__.py":
                rel = init.parent.relative_to(ROOT / folder)
                found.add(".".join((name, *rel.parts)))
    return found


def test_every_package_in_the_source_tree_is_in_the_wheel():
    cfg = _config()
    on_disk = _packages_on_disk(cfg["package-dir"])
    assert {"faderkit.train", "faderkit.evaluate", "faderkit_plugins.toyfaces"} <= on_disk  # the walk itself works
    declared = set(cfg["packages"])
    assert not on_disk - declared, f"add to [tool.setuptools] packages in pyproject.toml: {sorted(on_disk - declared)}"
    assert not declared - on_disk, f"declared but not in the tree: {sorted(declared - on_disk)}"


def test_every_data_file_of_a_package_is_package_data():
    cfg = _config()
    globs = cfg.get("package-data", {})
    missing = []
    for package in cfg["packages"]:
        src = _source_dir(package, cfg["package-dir"])
        subpackages = {_source_dir(p, cfg["package-dir"]) for p in cfg["packages"] if p.startswith(package + ".")}
        for path in _tracked(str(src.relative_to(ROOT))):
            if path.suffix == ".py" or any(sub in path.parents for sub in subpackages):
                continue
            rel = path.relative_to(src).as_posix()
            if not any(fnmatch.fnmatch(rel, g) for g in globs.get(package, [])):
                missing.append(f"{package}: {rel}")
    assert "faderkit.serve" in globs  # the console's page
    assert not missing, f"not shipped in the wheel, add to [tool.setuptools.package-data]: {missing}"
