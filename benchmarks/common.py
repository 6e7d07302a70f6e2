"""Shared helpers of the speed/memory benchmarks: data, recipes, timing, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
#: Issue 5's baseline (a well-known implementation, 2-core CPU, fp32 eager, one discriminator step and
#: one autoencoder step per iteration, each on its own batch of 32: 64 images drawn per AE update).
BASELINE_IMG_S = {64: 66.0, 256: 7.0}
BASELINE_IMAGES_PER_ITER = 64
#: The paper architecture at each size (published code: 32 feature maps, capped at 512).
LAYERS = {64: 5, 128: 6, 256: 6}
ATTRIBUTES = ["Smiling", "Eyeglasses", "Male"]


def add_common_args(ap) -> None:
    ap.add_argument("--threads", type=int, default=os.cpu_count(),
                    help="CPU threads for torch (torch.set_num_threads) [default: os.cpu_count() = %(default)s]")
    ap.add_argument("--json", type=Path, metavar="PATH", help="also write the figures to this JSON file")


def add_checkpoint_args(ap) -> None:
    """The arguments of a diagnosis of one trained checkpoint: its path, the dataset's folder, torch's threads."""
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--data-root", type=Path, help="the dataset's folder, if not where the checkpoint says")
    ap.add_argument("--threads", type=int, help="torch CPU threads")


def open_checkpoint(args):
    """(editor, recipe, dataset) for :func:`add_checkpoint_args`' arguments: the checkpoint loaded, its embedded
    recipe validated and pointed at ``--data-root`` if given, the dataset opened; torch's threads set first."""
    import torch

    from faderkit.data import open_dataset
    from faderkit.editor import Editor
    from faderkit.recipe import validate

    if args.threads:
        torch.set_num_threads(args.threads)
    editor = Editor.load(args.checkpoint)
    recipe = validate(editor.meta["recipe"], f"embedded in {args.checkpoint}", stored=True)
    if args.data_root:
        recipe.data.root = args.data_root.expanduser().resolve()
    return editor, recipe, open_dataset(recipe)


def add_rendered_args(ap, split_help: str = "the split measured [default: %(default)s]") -> None:
    """:func:`add_checkpoint_args` and the split and images of a measure against a dataset's renders."""
    add_checkpoint_args(ap)
    ap.add_argument("--split", default="valid", help=split_help)
    ap.add_argument("--images", type=int, default=300, help="images of the split [default: %(default)s]")


def open_rendered(args):
    """(editor, dataset, split, n, names) for :func:`add_rendered_args`' arguments, a measure against a dataset's
    renders (eval's ground truth): :func:`open_checkpoint`, the split and its first ``images``, the binary
    attributes' names; a checkpoint from before change maps were stored gets the maps training stores now. Prints
    what is measured, or a one-line error and returns None (a dataset that cannot render, a checkpoint that does not
    load)."""
    from faderkit.changemaps import stored_maps
    from faderkit.errors import FaderkitError
    from faderkit.evaluate import get_split
    from faderkit.evaluate.groundtruth import can_render

    try:
        editor, recipe, dataset = open_checkpoint(args)
        if not can_render(dataset):
            raise FaderkitError(f"{recipe.data.name} cannot re-render its images: no ground truth to measure against")
        model = editor.model
        if model.change_maps is None:
            model.change_maps = stored_maps(get_split(dataset, "train"), dataset.attributes, recipe.data.image_size,
                                            recipe.train.schedule.flip).to(editor.device)
        split = get_split(dataset, args.split)
    except FaderkitError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return None
    n = min(args.images, len(split))
    names = [a.name for a in editor.attributes if a.binary]
    print(f"{args.checkpoint}: {n} {args.split} images; per attribute {' / '.join(names)}")
    return editor, dataset, split, n, names


#: The per-attribute figures of eval's ground truth a measure against renders prints: (title, format, reader of one
#: attribute's section of a mode).
GT_COLUMNS = {
    "progress": ("progress at 1", "{:.2f}", lambda pa: pa["slider"]["progress_edit"][-1]),
    "cosine": ("cosine", "{:.2f}", lambda pa: pa["slider"]["cosine"]),
    "ratio": ("ratio", "{:.2f}", lambda pa: pa["slider"]["ratio"]),
    "outside": ("outside", "{:.0%}", lambda pa: pa["slider"]["outside"]),
    "flip_psnr": ("flip PSNR", "{:.1f}", lambda pa: pa["flip"]["psnr"]),
}


def gt_header(first: list[str], columns: list[str]) -> str:
    """The markdown head of a table whose rows are ``first`` cells then :func:`gt_row`'s ``columns``."""
    titles = first + [GT_COLUMNS[c][0] for c in columns]
    return "| " + " | ".join(titles) + " |\n|" + "---|" * len(titles)


def gt_row(first: list[str], gt: dict, mode: str, names: list[str], columns: list[str]) -> str:
    """One markdown row: ``first`` cells, then per column of :data:`GT_COLUMNS` the figure of each attribute in
    ``names`` (joined by " / ") in output ``mode`` of eval's ground-truth section ``gt``."""
    pa = gt[mode]["per_attribute"]
    cells = [" / ".join(fmt.format(read(pa[a])) for a in names) for _, fmt, read in (GT_COLUMNS[c] for c in columns)]
    return "| " + " | ".join(first + cells) + " |"


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def command_line() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def environment(device: str = "cpu", threads: int | None = None) -> dict:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cpu_count": os.cpu_count(),
           "threads": threads, "device": device, "machine": platform.machine()}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
    return env


def ensure_toyfaces(count: int, root: Path | None = None, seed: int = 0) -> Path:
    """A toy-faces dataset of ``count`` images (generated once, then reused): data/bench-toyfaces-<count>."""
    root = Path(root) if root else DATA / f"bench-toyfaces-{count}"
    if not (root / "toyfaces.json").is_file():
        from faderkit_plugins.toyfaces import generate

        print(f"generating {count:,} toy faces into {root} (once; reused by later runs)", file=sys.stderr, flush=True)
        generate.generate(root, count, seed=seed)
    return root


def open_toyfaces(root: Path, image_size: int, attributes=ATTRIBUTES):
    """The dataset with its uint8 cache built (so that building it is never timed)."""
    from faderkit_plugins.toyfaces.dataset import ToyFaces

    ds = ToyFaces(root, image_size=image_size, attributes=attributes)
    ds.ensure_cache()
    return ds


def paper_recipe_dict(root: Path, image_size: int, n_layers: int | None = None, batch_size: int = 32,
                      attributes=ATTRIBUTES, **train) -> dict:
    """The published architecture: n_layers stride-2 convs from 32 maps (max 512), latent discriminator 512/512."""
    return {
        "data": {"name": "toyfaces", "root": str(root), "attributes": list(attributes), "image_size": image_size},
        "model": {"n_layers": n_layers or LAYERS[image_size], "init_fm": 32, "max_fm": 512,
                  "discriminator": {"name": "latent", "params": {"conv_fm": 512, "hid_dim": 512, "dropout": 0.3}}},
        # the paper's training schedule (faderkit's defaults moved to 5 replayed discriminator steps and a
        # confusion target): one discriminator update per autoencoder update, flipped labels
        "train": train_groups(batch_size=batch_size, lr=2e-4, lambda_e=1e-4, lambda_warmup=500_000, dis_steps=1,
                              dis_replay=0, adv_objective="paper", **train),
        "classifier": {"name": "paper", "params": {"init_fm": 32, "max_fm": 512, "hid_dim": 512}},
    }


def train_groups(**settings) -> dict:
    """A recipe's train section from its settings by name (``dis_steps=1``), each in its group."""
    from faderkit.train_sections import nest

    return nest(settings, note=False)


def with_train(raw: dict, **settings) -> dict:
    """``raw`` with these train settings (by name) over its own, group by group."""
    train = dict(raw.get("train") or {})
    for group, values in train_groups(**settings).items():
        train[group] = {**(train.get(group) or {}), **values}
    return {**raw, "train": train}


def images_per_iteration(recipe) -> int:
    t = recipe.train
    return t.schedule.batch_size * (t.adversary.dis_steps + (0 if t.adversary.shared_batch else 1))


def time_iterations(step, warmup: int, windows: int, window_iters: int = 0, window_s: float = 3.0,
                    sync=lambda: None) -> dict:
    """Seconds per call of ``step()``: median over ``windows`` timed windows after ``warmup`` calls.

    ``window_iters`` 0: as many calls per window as fill ``window_s`` (judged from the last warm-up call).
    """
    last = None
    for _ in range(max(1, warmup)):
        t0 = time.perf_counter()
        step()
        sync()
        last = time.perf_counter() - t0
    n = window_iters or max(1, round(window_s / max(last, 1e-6)))
    per_iter = []
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        sync()
        per_iter.append((time.perf_counter() - t0) / n)
    return {"s_per_iter": statistics.median(per_iter), "windows_s_per_iter": per_iter, "iters_per_window": n}


def print_table(title: str, columns: list[str], rows: list[list], notes: list[str] = (), left: int = 2) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i < left else "right", no_wrap=True)
    for r in rows:
        table.add_row(*("-" if v is None else str(v) for v in r))
    console = Console() if Console().is_terminal else Console(width=200)
    console.print(table)
    for n in notes:
        console.print(n, highlight=False, markup=False)
    console.print(f"command: {command_line()}", highlight=False, markup=False)


def write_json(path: Path | None, payload: dict) -> None:
    if path is None:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"command": command_line(), **payload}, indent=2) + "\n")
    print(f"figures written to {path}")


def fmt(v: float | None, digits: int = 1) -> str | None:
    return None if v is None else f"{v:,.{digits}f}"
