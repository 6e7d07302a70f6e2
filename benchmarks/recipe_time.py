"""Expected time per 1,000 iterations of a recipe as written: a short run timed, then scaled.

Builds the Trainer of each recipe unchanged except ``data.root`` (toy faces written in one of the
CelebA layouts under data/bench-toyfaces-<layout>-<count>, generated once; the celeba plugin reads
them as it reads CelebA) and times its real iteration (data, discriminator updates, autoencoder
update) after warm-up: ``--iters`` iterations in 3 windows, the median scaled to 1,000. Validation,
samples and checkpoints are not included (they run every few thousand steps). The recipes' own
attributes must exist in the toy faces (Smiling, Eyeglasses, Male, Mouth_Slightly_Open, Bangs).

    python benchmarks/recipe_time.py                                     # both CelebA recipes, CPU
    python benchmarks/recipe_time.py recipes/celeba_128.yaml --iters 30 --device cuda
    python benchmarks/recipe_time.py --quick                             # smoke run: figures meaningless
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
from pathlib import Path

import common

RECIPES = [common.REPO / "recipes" / "celeba_128.yaml", common.REPO / "recipes" / "celeba_256_paper.yaml"]


def toy_root(layout: str, count: int) -> Path:
    root = common.DATA / f"bench-toyfaces-{layout}-{count}"
    if not root.exists():
        from faderkit_plugins.toyfaces import generate

        print(f"generating {count:,} toy faces ({layout} layout) into {root} (once)", file=sys.stderr, flush=True)
        generate.generate(root, count, seed=0, layout=layout)
    return root


def measure(recipe_path: Path, root: Path, args) -> dict:
    import torch

    from faderkit.recipe import load_recipe
    from faderkit.train import Trainer

    overrides = [f"data.root={root}"] + ([f"train.speed.threads={args.threads}"] if args.threads else [])
    recipe = load_recipe(recipe_path, overrides)
    with tempfile.TemporaryDirectory(prefix="faderkit-bench-") as tmp:
        trainer = Trainer(recipe, tmp, device=args.device, progress=False, log=lambda m: None)
        trainer._setup()
        trainer.dataset.ensure_cache()
        trainer.model.train()
        gen = torch.Generator().manual_seed(0)
        cuda = trainer.device.type == "cuda"
        device_name = torch.cuda.get_device_name() if cuda else "cpu"

        def step():
            trainer._iteration(gen)
            trainer.step += 1

        sync = torch.cuda.synchronize if cuda else (lambda: None)
        t = common.time_iterations(step, args.warmup, 3, max(1, args.iters // 3), sync=sync)
        del trainer
        gc.collect()
    return {"recipe": recipe_path.name, "device": device_name, "image_size": recipe.data.image_size,
            "timed_iters": 3 * max(1, args.iters // 3), "s_per_iter": t["s_per_iter"],
            "s_per_1000": 1000 * t["s_per_iter"], "steps": recipe.train.schedule.steps,
            "hours_for_recipe": recipe.train.schedule.steps * t["s_per_iter"] / 3600, "windows": t["windows_s_per_iter"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipes", nargs="*", type=Path, default=RECIPES, help="recipe files [default: the CelebA ones]")
    ap.add_argument("--layout", default="original", choices=["original", "kaggle", "torchvision"])
    ap.add_argument("--count", type=int, default=200, help="toy faces to generate once and train on")
    ap.add_argument("--iters", type=int, default=30, help="timed iterations (in 3 windows)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch [default: the recipe's]")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")
    ap.add_argument("--quick", action="store_true", help="smoke run (3 timed iterations, 1 warm-up): figures meaningless")
    args = ap.parse_args(argv)
    if args.quick:
        args.iters, args.warmup = 3, 1
    root = toy_root(args.layout, args.count)
    rows = [measure(Path(p), root, args) for p in args.recipes]
    common.print_table(
        "time per 1,000 iterations (a short timed run, scaled)",
        ["recipe", "device", "px", "timed iters", "s/iter", "s per 1,000 iters", "steps", "hours for steps"],
        [[r["recipe"], r["device"], r["image_size"], r["timed_iters"], common.fmt(r["s_per_iter"], 3),
          common.fmt(r["s_per_1000"], 0), f"{r['steps']:,}", common.fmt(r["hours_for_recipe"], 1)] for r in rows],
        notes=["excludes validation, samples and checkpoints; measured on whatever else the machine was running"])
    common.write_json(args.json, {"environment": common.environment(rows[0]["device"]), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
