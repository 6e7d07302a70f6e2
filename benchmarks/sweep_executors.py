"""The same small sweep (2 variants x 2 seeds) through `local` one at a time, `local` two at a time, `ray` and
`submitit` (its local executor, cluster=local).

Prints each one's wall time and whether the reports' figures agree (they must: the runs are the same
processes with the same seeds and one thread each). Needs the ray and submitit extras for the last two.

    python benchmarks/sweep_executors.py --steps 100 --out /tmp/sweep-bench [--no-ray] [--only serial,local2,submitit]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from pathlib import Path

import yaml

from faderkit.sweep import sweep


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipe", default="recipes/quickstart.yaml")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--out", default="/tmp/sweep-bench")
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--only", default="serial,local2,ray,submitit")
    a = ap.parse_args()
    out = Path(a.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = {"recipe": str(Path(a.recipe).resolve()), "seeds": [0, 1],
            "set": {"train.schedule.steps": a.steps, "train.logging.eval_every": a.steps, "train.logging.sample_every": a.steps,
                    "train.logging.checkpoint_every": a.steps, "classifier.steps": 50},
            "variants": [{"name": "edge0", "set": {"train.objective.edge_weight": 0}},
                         {"name": "edge2", "set": {"train.objective.edge_weight": 2}}],
            "eval": {"limit": 200, "gt_images": 20}}
    (out / "smoke.yaml").write_text(yaml.safe_dump(spec))
    ways = {"serial": dict(executor="local", jobs=1, threads=1), "local2": dict(executor="local", jobs=2, threads=1),
            "ray": dict(executor="ray", jobs=2, threads=1),
            "submitit": dict(executor="submitit", jobs=2, threads=1, executor_params={"cluster": "local"})}
    wanted = [w for w in a.only.split(",") if not (a.no_ray and w == "ray")]
    times, figs = {}, {}
    for way in wanted:
        t = time.perf_counter()
        md = sweep(out / "smoke.yaml", out / way, name="smoke", log=print, **ways[way])
        times[way] = time.perf_counter() - t
        rep = json.loads(md.with_suffix(".json").read_text())
        figs[way] = {v: {k: r["values"] for k, r in rows.items()} for v, rows in rep["figures"].items()}
        print(f"{way}: {times[way]:.1f} s")
    print(f"machine: {platform.processor() or platform.machine()}; steps {a.steps}")
    for way in wanted:
        same = figs[way] == figs[wanted[0]]
        print(f"{way:8s} {times[way]:7.1f} s   figures identical to {wanted[0]}: {same}")


if __name__ == "__main__":
    main()
