"""Fuzzing checkpoints: safetensors bytes mutated and truncated in every region (length, JSON header,
tensor data), the faderkit metadata JSON mutated (with a consistent checksum, as a careless tool
would write it), and tensors renamed, reshaped or retyped; then loaded and, when that works, used."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from faderkit import FaderkitError
from faderkit import checkpoint as ckpt
from faderkit.editor import Editor

from fuzzing import budget, mutated_bytes, outcome, snapshot, unchanged

JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)


class Source:
    """The tiny trained checkpoint (a plain object: Hypothesis prints its arguments on failure)."""

    def __init__(self, path):
        self.raw = path.read_bytes()
        self.tensors, self.meta = ckpt.load(path)

    def __repr__(self):
        return "Source(best.safetensors)"


@pytest.fixture(scope="module")
def source(trained_run):
    return Source(trained_run / "best.safetensors")


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_meta(draw, meta: dict):
    meta = json.loads(json.dumps(meta))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from([p for p in _paths(meta) if p]))
        parent = meta
        for key in path[:-1]:
            parent = parent[key]
        if draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON)
    return meta


@st.composite
def mutated_tensors(draw, tensors: dict):
    tensors = dict(tensors)
    name = draw(st.sampled_from(sorted(tensors)))
    op = draw(st.sampled_from(["drop", "rename", "reshape", "retype", "extra"]))
    if op == "drop":
        del tensors[name]
    elif op == "rename":
        tensors[name + draw(st.sampled_from([".x", "_", ""]))] = tensors.pop(name)
    elif op == "reshape":
        tensors[name] = torch.zeros(draw(st.lists(st.integers(0, 5), max_size=4)))
    elif op == "retype":
        tensors[name] = tensors[name].to(draw(st.sampled_from([torch.float16, torch.int64, torch.uint8, torch.bool])))
    else:
        tensors[draw(st.text(min_size=1, max_size=10))] = torch.ones(2)
    return tensors


def _check(tmp_path, write):
    folder = tmp_path / "run"
    folder.mkdir()
    write(folder / "best.safetensors")
    (folder / "metrics.jsonl").write_text('{"step": 1}\n')
    before = snapshot(tmp_path)
    editor = outcome(Editor.load, folder / "best.safetensors")
    assert isinstance(editor, (Editor, FaderkitError)), type(editor)
    if isinstance(editor, Editor):
        photo = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
        edited = outcome(editor.edit, photo, align=False)
        assert isinstance(edited, FaderkitError) or edited.size == (40, 40), edited  # the photo, at its own size
    unchanged(before, snapshot(tmp_path))


@budget(40)
@given(data=st.data())
def test_mutated_bytes(tmp_path_factory, source, data):
    raw = source.raw
    header = 8 + int.from_bytes(raw[:8], "little")
    cut = data.draw(st.sampled_from([0, 4, 8, 9, header // 2, header - 1, header, header + 1, len(raw) - 1])
                    | st.integers(0, len(raw)))
    blob = data.draw(st.one_of(st.just(raw[:cut]), mutated_bytes(raw[:header], max_ops=4).map(lambda h: h + raw[header:]),
                               mutated_bytes(raw)))
    _check(tmp_path_factory.mktemp("ck"), lambda p: p.write_bytes(blob))


@budget(40)
@given(data=st.data())
def test_mutated_metadata(tmp_path_factory, source, data):
    tensors, meta = source.tensors, source.meta
    meta = data.draw(mutated_meta(meta))
    _check(tmp_path_factory.mktemp("ck"), lambda p: ckpt.save(p, tensors, meta))


@budget(30)
@given(data=st.data())
def test_mutated_tensors(tmp_path_factory, source, data):
    tensors, meta = source.tensors, source.meta
    tensors = data.draw(mutated_tensors(tensors))
    _check(tmp_path_factory.mktemp("ck"), lambda p: ckpt.save(p, tensors, meta))
