"""Fuzzing recipes: YAML text mutated from the shipped recipes, and ``--set`` strings."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from faderkit import FaderkitError
from faderkit.recipe import Recipe, load_recipe

from fuzzing import ODD_VALUES, budget, mutated_bytes, mutated_lines, outcome, snapshot, unchanged

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))
TEXTS = {p.name: p.read_text() for p in RECIPES}


def _keys(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _keys(v, f"{prefix}{k}.")
    yield prefix.rstrip(".")


KEYS = sorted({k for t in TEXTS.values() for k in _keys(yaml.safe_load(t)) if k})
SET_STRINGS = st.one_of(
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS) | st.text(max_size=20), st.sampled_from(ODD_VALUES) | st.text(max_size=20)),
    st.text(max_size=40),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.sampled_from(KEYS)),
)


def _check(tmp_path: Path, text: bytes, overrides: list[str]):
    """The contract on one recipe: one FaderkitError line or a recipe; only the recipe file is read."""
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    (folder / "recipe.yaml").write_bytes(text)
    before = snapshot(tmp_path)
    result = outcome(load_recipe, folder / "recipe.yaml", overrides)
    unchanged(before, snapshot(tmp_path))
    assert isinstance(result, (Recipe, FaderkitError)), type(result)


@budget(60)
@given(name=st.sampled_from(sorted(TEXTS)), data=st.data(), overrides=st.lists(SET_STRINGS, max_size=3))
@example(name="quickstart.yaml", data=None, overrides=[])
def test_mutated_recipe_text(tmp_path_factory, name, data, overrides):
    text = TEXTS[name].encode()
    if data is not None:
        text = data.draw(st.one_of(mutated_lines(TEXTS[name]).map(str.encode), mutated_bytes(text)))
    _check(tmp_path_factory.mktemp("recipe"), text, overrides)


@budget(60)
@given(overrides=st.lists(SET_STRINGS, min_size=1, max_size=4))
def test_set_strings(tmp_path_factory, overrides):
    _check(tmp_path_factory.mktemp("set"), TEXTS["quickstart.yaml"].encode(), overrides)
