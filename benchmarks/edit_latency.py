"""Edit latency at 256 px: the Editor in process (per image) and `faderkit edit` end to end (CLI wall time).

Builds a 256 px model with random weights (published architecture: 6 layers from 32 feature maps,
max 512; --arch paper: recipes/celeba_256_paper.yaml's 7 layers from 16) with an attribute
classifier, so unset attributes are inferred as in real use, and saves it as a faderkit checkpoint
with the metadata Trainer._save writes. The input is one toy face at CelebA's native 178x218 (so
it gets the CelebA crop). Latency does not depend on the weights' values.

In process: Editor.edit(path, Smiling=1) (decode, crop, resize, classifier, encoder, decoder),
median over --repeats after warm-up; also the model part alone (edit_tensor) and Editor.load.
CLI: `faderkit edit face.jpg -c ckpt --set Smiling=1 -o out.png` as a subprocess, median wall time
of --cli-runs after one warm-up run; beside it, the floors (`python -c "import torch"`,
`faderkit --help`) and the slowest imports (python -X importtime) of one CLI run.

Targets (issue 5): in process <= 100 ms per 256 px image; CLI end to end <= 4 s.

    python benchmarks/edit_latency.py                 # ~1 min on 2 CPU cores
    python benchmarks/edit_latency.py --profile       # also cProfile the CLI run: where its time goes
    python benchmarks/edit_latency.py --quick         # smoke run
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

TARGET_IN_PROCESS_MS, TARGET_CLI_S = 100, 4.0


def make_checkpoint(path: Path, arch: str, seed: int = 0, size: int = 256) -> dict:
    """A random-weight fader + classifier checkpoint (``size`` px; 256 by default), metadata as
    Trainer._save writes it."""
    import torch

    from faderkit import checkpoint as ckpt
    from faderkit.interfaces import Attribute
    from faderkit.model import FaderModel, build_classifier
    from faderkit.recipe import read_yaml, validate
    from faderkit_plugins.celeba.dataset import CelebA

    raw = common.paper_recipe_dict(common.DATA / "bench-toyfaces", size, common.LAYERS[size])
    if arch == "paper":
        paper = read_yaml(common.REPO / "recipes" / "celeba_256_paper.yaml")
        raw["model"], raw["classifier"] = paper["model"], paper["classifier"]
    recipe = validate(raw, "edit_latency")
    attrs = tuple(Attribute(n) for n in common.ATTRIBUTES)
    torch.manual_seed(seed)
    model, classifier = FaderModel.build(recipe, attrs), build_classifier(recipe, attrs)
    tensors = {**ckpt.prefixed("model", model.state_dict()), **ckpt.prefixed("classifier", classifier.state_dict())}
    meta = {"kind": "fader", "recipe": recipe.model_dump(mode="json"), "attributes": [a.to_json() for a in attrs],
            "step": 0, "best": None, "image_size": size,
            "preprocess": {"native_size": CelebA.native_size, "crop_box": CelebA.crop_box}, "has_classifier": True}
    ckpt.save(path, tensors, meta)
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    return {"n_layers": recipe.model.n_layers, "init_fm": recipe.model.init_fm, "max_fm": recipe.model.max_fm,
            "model_params": params(model), "classifier_params": params(classifier),
            "checkpoint_mib": path.stat().st_size / 2**20}


def make_face(path: Path) -> None:
    from PIL import Image

    from faderkit_plugins.toyfaces.generate import identity_and_attributes
    from faderkit_plugins.toyfaces.render import render

    identity, attrs = identity_and_attributes(0, 1)
    Image.fromarray(render(identity, attrs)).save(path, quality=95)


def in_process(ckpt: Path, face: Path, args) -> dict:
    import torch

    from faderkit import checkpoint
    from faderkit.editor import Editor
    from faderkit.interfaces import Attribute
    from faderkit.model import FaderModel, build_classifier
    from faderkit.recipe import validate

    t0 = time.perf_counter()
    editor = Editor.load(ckpt)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()  # Editor.load's two big parts, again: reading the file, building (random init)
    _, meta = checkpoint.load(ckpt)
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    recipe, attrs = validate(meta["recipe"]), tuple(Attribute.from_json(a) for a in meta["attributes"])
    FaderModel.build(recipe, attrs), build_classifier(recipe, attrs)
    build_s = time.perf_counter() - t0
    x = editor.prepare(face)

    def median_ms(fn) -> float:
        for _ in range(args.warmup):
            fn()
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return 1000 * statistics.median(times)

    with torch.inference_mode():
        return {"load_ms": 1000 * load_s, "load_read_ms": 1000 * read_s, "load_build_ms": 1000 * build_s,
                "edit_ms": median_ms(lambda: editor.edit(face, Smiling=1)),
                "model_ms": median_ms(lambda: editor.edit_tensor(x, {"Smiling": "1"})),
                "prepare_ms": median_ms(lambda: editor.prepare(face))}


def wall(cmd: list[str], runs: int, env: dict) -> tuple[float, list[float]]:
    """Median wall time of ``cmd`` over ``runs`` runs, after one untimed run (warm page cache)."""
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr}")
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def import_hot_spots(cmd: list[str], env: dict, top: int) -> list[tuple[str, float]]:
    """The slowest imports of one run of ``cmd`` (python -X importtime): (module, cumulative ms)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd], env=env, capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1000, len(m.group(3)) // 2))
    # top-level imports (depth 0) plus every faderkit module, by cumulative time
    chosen = [(n, ms) for n, ms, depth in rows if depth == 0 or n.startswith("faderkit")]
    return sorted(chosen, key=lambda r: -r[1])[:top]


def profile(cmd: list[str], env: dict, top: int) -> str:
    import io
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cli.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(out), *cmd], env=env, check=True,
                       capture_output=True)
        buf = io.StringIO()
        pstats.Stats(str(out), stream=buf).sort_stats("cumulative").print_stats(top)
        return buf.getvalue()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=["published", "paper"], default="published",
                    help="published: 6 layers from 32 maps; paper: recipes/celeba_256_paper.yaml (7 from 16)")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20, help="timed in-process edits (median)")
    ap.add_argument("--cli-runs", type=int, default=5, help="timed CLI runs (median)")
    ap.add_argument("--top-imports", type=int, default=15)
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of one CLI run (top 30, cumulative)")
    ap.add_argument("--keep", type=Path, help="write the checkpoint, face and output here instead of a temp dir")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 warm-up, 2 repeats, 1 CLI run")
    common.add_common_args(ap)
    args = ap.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.cli_runs = 1, 2, 1
    common.set_threads(args.threads)

    with tempfile.TemporaryDirectory(prefix="faderkit-edit-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ckpt, face, out = work / "model256.safetensors", work / "face.jpg", work / "out.png"
        info = make_checkpoint(ckpt, args.arch)
        make_face(face)
        print("in process ...", file=sys.stderr, flush=True)
        ip = in_process(ckpt, face, args)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        exe = Path(sys.executable).with_name("faderkit")
        cli = [str(exe)] if exe.exists() else [sys.executable, "-m", "faderkit.cli"]
        edit = ["edit", str(face), "-c", str(ckpt), "--set", "Smiling=1", "-o", str(out)]
        print("CLI ...", file=sys.stderr, flush=True)
        cli_s, cli_times = wall(cli + edit, args.cli_runs, env)
        torch_s, _ = wall([sys.executable, "-c", "import torch"], args.cli_runs, env)
        help_s, _ = wall(cli + ["--help"], args.cli_runs, env)
        hot = import_hot_spots(["-m", "faderkit.cli"] + edit, env, args.top_imports)
        prof = profile(["-m", "faderkit.cli"] + edit, env, 30) if args.profile else None

    rows = [
        ["Editor.edit(path, Smiling=1), per image", f"{ip['edit_ms']:.1f} ms", f"<= {TARGET_IN_PROCESS_MS} ms",
         "met" if ip["edit_ms"] <= TARGET_IN_PROCESS_MS else "NOT MET"],
        ["  of which prepare (decode, crop, resize)", f"{ip['prepare_ms']:.1f} ms", "-", "-"],
        ["  of which edit_tensor (classifier + E + D)", f"{ip['model_ms']:.1f} ms", "-", "-"],
        ["Editor.load (once per process)", f"{ip['load_ms']:.0f} ms", "-", "-"],
        ["  of which reading the checkpoint", f"{ip['load_read_ms']:.0f} ms", "-", "-"],
        ["  of which building the networks (random init)", f"{ip['load_build_ms']:.0f} ms", "-", "-"],
        ["faderkit edit ... (CLI, end to end)", f"{cli_s:.2f} s", f"<= {TARGET_CLI_S:g} s",
         "met" if cli_s <= TARGET_CLI_S else "NOT MET"],
        ["  floor: python -c 'import torch'", f"{torch_s:.2f} s", "-", "-"],
        ["  floor: faderkit --help", f"{help_s:.2f} s", "-", "-"],
    ]
    notes = [f"model: {info['n_layers']} layers from {info['init_fm']} maps (max {info['max_fm']}), "
             f"{info['model_params'] / 1e6:.1f} M parameters + classifier {info['classifier_params'] / 1e6:.1f} M; "
             f"checkpoint {info['checkpoint_mib']:.0f} MiB; {args.threads} threads; in process: median of "
             f"{args.repeats} after {args.warmup} warm-up; CLI: median of {args.cli_runs} after 1 warm-up run",
             "slowest imports of one CLI run (python -X importtime; cumulative ms; top-level modules and faderkit's): "
             + ", ".join(f"{n} {ms:.0f}" for n, ms in hot)]
    common.print_table("edit latency at 256 px (CPU)", ["figure", "value", "target", "met"], rows, notes, left=1)
    if prof:
        print(prof)
    common.write_json(args.json, {"benchmark": "edit_latency", "environment": common.environment("cpu", args.threads),
                                  "model": info, "in_process": ip,
                                  "cli": {"median_s": cli_s, "runs_s": cli_times, "import_torch_s": torch_s,
                                          "help_s": help_s, "command": " ".join(cli + edit)},
                                  "import_hot_spots_ms": dict(hot),
                                  "targets_met": {"in_process": ip["edit_ms"] <= TARGET_IN_PROCESS_MS,
                                                  "cli": cli_s <= TARGET_CLI_S}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
