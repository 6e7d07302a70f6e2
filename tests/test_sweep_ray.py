"""The ray executor against a local Ray started by the test: the same runs give the same report as local."""

from __future__ import annotations

import json

import pytest
import yaml

from faderkit.sweep import sweep

from conftest import tiny_recipe

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'faderkit[ray]')")


def test_ray_gives_the_same_report_as_local(tmp_path, toy_root):
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny_recipe(toy_root, steps=4, eval_every=4, sample_every=4)))
    (tmp_path / "sw.yaml").write_text(yaml.safe_dump({
        "recipe": "tiny.yaml", "seeds": [0], "eval": {"gt_images": 4, "limit": 6},
        "variants": [{"name": "a"}]}))
    reports = {}
    for executor in ("ray", "local"):
        md = sweep(tmp_path / "sw.yaml", tmp_path / executor, executor=executor, jobs=2, threads=1)
        reports[executor] = json.loads(md.with_suffix(".json").read_text())
    assert not ray.is_initialized()  # the executor shut down the Ray it started
    assert [r["state"] for r in reports["ray"]["runs"].values()] == ["done"]
    assert reports["ray"]["figures"] == reports["local"]["figures"]
