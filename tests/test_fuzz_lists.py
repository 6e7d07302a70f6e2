"""Fuzzing the dataset list files: CelebA's attribute, partition and landmark lists (.txt and .csv)
and Oxford-102's .mat labels and caption files, mutated from real ones with BOMs, CRLF, odd widths,
bad numbers and random bytes."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import scipy.io
from hypothesis import given
from hypothesis import strategies as st

from faderkit import FaderkitError
from faderkit_plugins.celeba.lists import partition_of, read_attributes, read_landmarks, read_partition
from faderkit_plugins.oxford102.captions import read_captions
from faderkit_plugins.oxford102.dataset import read_mat

from conftest import generated
from fuzzing import ODD_VALUES, budget, mutated_bytes, outcome, snapshot, unchanged

READERS = {"list_attr_celeba": read_attributes, "list_eval_partition": read_partition,
           "list_landmarks_align_celeba": read_landmarks}
NUMBERS = ["1", "-1", "0", "2", "3", "+1", "1.0", "-0", "01", "1e3", "١", "", "nan", "-", "--1", "9" * 40]


def _csv(name: str, text: str) -> str:
    lines = text.splitlines()
    if name == "list_eval_partition":
        return "image_id,partition\n" + "\n".join(",".join(l.split()) for l in lines) + "\n"
    return ",".join(["image_id"] + lines[1].split()) + "\n" + "\n".join(",".join(l.split()) for l in lines[2:]) + "\n"


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    root = generated(tmp_path_factory, "toyfaces", 12)
    out = {}
    for name in READERS:
        text = (root / f"{name}.txt").read_text()
        out[name, ".txt"], out[name, ".csv"] = text, _csv(name, text)
    return out


@st.composite
def mutated_table(draw, text: str):
    """``text`` with cells swapped for odd numbers, rows made wider or narrower, a BOM, CRLF or
    another separator, or random bytes."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        cells = re.split(r"([ ,]+)", lines[i])
        op = draw(st.sampled_from(["cell", "cell", "drop", "add", "blank", "dup"]))
        if op == "cell":
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = draw(st.sampled_from(NUMBERS + ODD_VALUES) | st.text(max_size=6))
        elif op == "drop" and len(cells) > 1:
            del cells[-2:]
        elif op == "add":
            cells += [" ", draw(st.sampled_from(NUMBERS))]
        elif op == "blank":
            cells = [""]
        elif op == "dup":
            lines.insert(i, lines[i])
        lines[i] = "".join(cells)
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "\n\n"]))
    data = (draw(st.sampled_from(["", "\ufeff"])) + ending.join(lines) + ending).encode("utf-8", "surrogatepass")
    return draw(st.just(data) | mutated_bytes(data, max_ops=3))


def _check(tmp_path, filename, data, reader):
    (tmp_path / filename).write_bytes(data)
    (tmp_path / "earlier.txt").write_text("kept\n")
    before = snapshot(tmp_path)
    result = outcome(reader, tmp_path / filename)
    unchanged(before, snapshot(tmp_path))
    return result


@budget(60)
@given(data=st.data())
def test_celeba_lists(tmp_path_factory, lists, data):
    name, suffix = data.draw(st.sampled_from(sorted(lists)))
    blob = data.draw(mutated_table(lists[name, suffix]))
    result = _check(tmp_path_factory.mktemp("lists"), name + suffix, blob, READERS[name])
    _well_formed(name, result)
    if name == "list_eval_partition" and isinstance(result, tuple):  # the partition matched against the attributes
        path = tmp_path_factory.mktemp("p") / "list_eval_partition.txt"
        outcome(partition_of, result[0][:5] + ["000999.jpg"], path, path)


def _well_formed(name: str, result) -> None:
    """What a CelebA list reader promises when it does not refuse the file: the types and shapes it documents."""
    if isinstance(result, FaderkitError):
        return
    if name == "list_attr_celeba":
        attributes, files, table = result
        assert table.dtype == np.int8 and table.shape == (len(files), len(attributes)), (table.dtype, table.shape)
        assert set(np.unique(table).tolist()) <= {0, 1}
    elif name == "list_eval_partition":
        files, partition = result
        assert partition.dtype == np.int8 and partition.shape == (len(files),), (partition.dtype, partition.shape)
        assert set(np.unique(partition).tolist()) <= {0, 1, 2}
    else:
        files, marks = result
        assert marks.dtype == np.float64 and marks.shape == (len(files), 10), (marks.dtype, marks.shape)
    assert all(isinstance(f, str) and f for f in files)


def _mat(variables: dict) -> bytes:
    buf = io.BytesIO()
    scipy.io.savemat(buf, variables)
    return buf.getvalue()


MAT_VALUES = st.one_of(
    st.lists(st.integers(-2**40, 2**40), max_size=8).map(lambda v: np.array([v], dtype=np.int64)),
    st.lists(st.floats(allow_nan=True), max_size=4).map(lambda v: np.array([v])),
    st.text(max_size=8), st.just(np.zeros((0, 0))), st.just(np.array([[1.5, 2]])),
)
MATS = st.one_of(
    st.dictionaries(st.sampled_from(["trnid", "valid", "tstid", "labels", "other"]), MAT_VALUES, max_size=4).map(_mat),
    st.just(_mat({"trnid": np.array([[1, 2]]), "valid": np.array([[3]]), "tstid": np.array([[4]])})).flatmap(mutated_bytes),
)


@budget(10)  # each example starts a child process (see read_mat)
@given(blob=MATS)
def test_oxford_mat(tmp_path_factory, blob):
    result = _check(tmp_path_factory.mktemp("mat"), "setid.mat", blob, lambda p: read_mat(p, ["trnid", "valid", "tstid"]))
    if not isinstance(result, FaderkitError):  # the named variables, each a 1-D int64 array
        assert set(result) == {"trnid", "valid", "tstid"}
        assert all(v.dtype == np.int64 and v.ndim == 1 for v in result.values())


@budget(30)
@given(blob=st.lists(st.text(max_size=30), max_size=14).map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))
       .flatmap(lambda b: st.just(b) | mutated_bytes(b + b"\n", max_ops=2)))
def test_oxford_captions(tmp_path_factory, blob):
    result = _check(tmp_path_factory.mktemp("cap"), "image_00001.txt", blob, read_captions)
    if not isinstance(result, FaderkitError):  # the ten captions of one image
        assert len(result) == 10 and all(isinstance(c, str) for c in result)
