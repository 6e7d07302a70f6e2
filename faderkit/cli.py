"""The ``faderkit`` command: thin wrappers that parse, load the recipe and call the library."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .errors import FaderkitError
from .modes import DEFAULT_MODE, MODES, OUTPUT_MODES
from .plugins import KINDS
from .train_sections import moved_key_notes


class InternalError(click.ClickException):
    exit_code = 1


def _one_line(text: str) -> str:
    """A message that stays on one line even when it quotes a path or value holding a newline."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def one_line(exc: BaseException) -> str:
    """What an unexpected exception says, on one line, for a user."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}{': ' + str(exc.filename) if exc.filename else ''}"
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


class Group(click.Group):
    """Turns a FaderkitError anywhere below into one ``Error: ...`` line and exit status 2.

    Anything unexpected is also one line (exit status 1), naming the exception; set
    FADERKIT_DEBUG=1 to see the traceback instead.
    """

    def invoke(self, ctx):
        try:
            with moved_key_notes(lambda line: click.echo(line, err=True)):
                return super().invoke(ctx)
        except FaderkitError as exc:
            raise click.ClickException(_one_line(str(exc))) from None
        except click.UsageError as exc:  # one line, not click's usage block
            where = exc.ctx.command_path if exc.ctx else ctx.command_path
            raise click.ClickException(f"{_one_line(exc.format_message())} (see '{where} --help')") from None
        except KeyboardInterrupt:
            click.echo("interrupted; the last checkpoint written is intact", err=True)
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except MemoryError:
            raise InternalError("out of memory; lower train.schedule.batch_size or data.image_size") from None
        except Exception as exc:
            if os.environ.get("FADERKIT_DEBUG"):
                raise
            if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError
                raise InternalError("out of GPU memory; lower train.schedule.batch_size or data.image_size") from None
            raise InternalError(f"unexpected {one_line(exc)} (a faderkit bug unless the message says otherwise; "
                                "FADERKIT_DEBUG=1 shows the traceback)") from None


click.ClickException.exit_code = 2


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="faderkit")
def cli():
    """Fader Networks: train a model whose attributes become sliders, then edit images with it.

    \b
    Quick start:
      faderkit train recipes/quickstart.yaml          # toy faces, ~10 min on 2 CPU cores
      faderkit edit face.jpg --checkpoint runs/quickstart/best.safetensors --set Smiling=1 -o out.png
    """


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a recipe value by its dotted path, e.g. --set train.schedule.steps=200 (repeatable).")
@click.option("--run-dir", type=click.Path(path_type=Path),
              help="Where checkpoints, samples and metrics go [default: runs/<recipe name>].")
@click.option("--resume", is_flag=True, help="Continue the run in --run-dir from its last checkpoint.")
@click.option("--device", help="auto, cpu, cuda or cuda:N [default: the recipe's train.speed.device].")
@click.option("--print-recipe", is_flag=True, help="Print the resolved recipe (after --set) and exit without training.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(recipe, overrides, run_dir, resume, device, print_recipe, quiet):
    """Train a Fader Network (and its attribute classifier) from a YAML RECIPE.

    The run directory receives the resolved recipe before the first step, metrics.jsonl,
    sample grids under samples/, last.safetensors (for --resume) and best.safetensors
    (best on the validation split). An existing run directory is never overwritten.
    """
    from .recipe import load_recipe, to_yaml

    resolved = load_recipe(recipe, list(overrides))
    if print_recipe:
        from .precision import choice_line

        click.echo(to_yaml(resolved) + f"# {choice_line(resolved, device)}")
        return
    from .train import train as run_train

    run_dir = run_dir or Path("runs") / recipe.stem
    best = run_train(resolved, run_dir, resume=resume, device=device, progress=not quiet,
                     log=lambda m: click.echo(m, err=True))
    click.echo(str(best))


def _parse_settings(pairs) -> dict[str, str]:
    out = {}
    for text in pairs:
        name, sep, value = text.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise FaderkitError(f"malformed --set '{text}': expected ATTRIBUTE=VALUE, e.g. --set Smiling=0.8")
        if name.strip() in out:
            raise FaderkitError(f"--set {name.strip()} is given twice ({out[name.strip()]} and {value.strip()}); keep one")
        out[name.strip()] = value.strip()
    return out


@cli.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--checkpoint", "-c", required=True, type=click.Path(path_type=Path),
              help="A faderkit checkpoint, e.g. runs/quickstart/best.safetensors.")
@click.option("--set", "settings", multiple=True, metavar="ATTR=VALUE",
              help="Slider value: 0 absent, 1 present, in between fades, beyond extrapolates (e.g. 1.5). "
                   "Categorical attributes take a value name. Unset attributes keep the image's own values.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the edited image (.png or .jpg); required unless --show-faces is all you want.")
@click.option("--mode", type=click.Choice(OUTPUT_MODES), default=DEFAULT_MODE, show_default=True,
              help="; ".join(f"{m.name}: {m.help}" for m in MODES) + ".")
@click.option("--compare", is_flag=True, help="Write the input and the edit side by side.")
@click.option("--sweep", metavar="ATTR=START:STOP:COUNT",
              help="Write one row instead, at the model's size: original, reconstruction, then ATTR slid over COUNT "
                   "values from START to STOP, e.g. --sweep Smiling=-0.5:1.5:9 (--set values hold for the whole row).")
@click.option("--labels/--no-labels", default=True, show_default=True, help="Title the columns of a --sweep row.")
@click.option("--overwrite-input", is_flag=True, help="Allow -o to be the input image itself.")
@click.option("--face", type=click.IntRange(min=1), metavar="N",
              help="Edit the N-th face, counted from 1 left to right (--show-faces draws the numbers).")
@click.option("--all-faces", is_flag=True, help="Edit every face large enough for the model.")
@click.option("--align/--no-align", default=None,
              help="Align the face like the training data [default: when the model's dataset declares where its "
                   "landmarks sit and IMAGE is not already one of its images]; --no-align crops as the loader does.")
@click.option("--locator", metavar="NAME",
              help="The registered face locator to use [default: the one the model's dataset names, else mtcnn].")
@click.option("--show-faces", type=click.Path(dir_okay=False, path_type=Path), metavar="PATH",
              help="Also write IMAGE with the faces found drawn on it: numbered boxes, landmarks, scores "
                   "(the faces to be edited in green).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
def edit(image, checkpoint, settings, output, mode, compare, sweep, labels, overwrite_input, face, all_faces, align,
         locator, show_faces, device):
    """Edit IMAGE by setting attribute sliders, e.g. --set Smiling=0.8 --set Male=0.

    A photo is first searched for faces; the face is aligned the way the training data's faces
    were (a rotation, scale and shift), edited, and the change mapped back onto the photo at its
    own resolution, blended in with a soft edge: the output has the input's size and every pixel
    away from the face is unchanged. Use --face N or --all-faces when a photo shows several
    faces, and --no-align for an image already cropped like the training data. In the decoded
    mode the output is the model's own S x S image. `faderkit plugins` and the checkpoint's
    recipe tell which attributes a model has.
    """
    import numpy as np

    from .editor import Editor
    from .imageio import save_image, to_tensor
    from .sliders import check_sweepable, parse_sweep, sweep_row

    parsed = _parse_settings(settings)
    swept = parse_sweep(sweep) if sweep is not None else None
    if swept and compare:
        raise FaderkitError("--sweep and --compare: choose one (a sweep row already starts with the input)")
    if output is None and show_faces is None:
        raise FaderkitError("give -o OUTPUT for the edit (or only --show-faces PATH to see the faces found)")
    for path in (output, show_faces):
        if path is not None and image.exists() and path.exists() and path.resolve() == image.resolve() \
                and not overwrite_input:
            raise FaderkitError(f"{'-o' if path is output else '--show-faces'} {path} is the input image; choose "
                                "another output or pass --overwrite-input")
    if output is not None and show_faces is not None and output.resolve() == show_faces.resolve():
        raise FaderkitError(f"-o and --show-faces both name {output}; give each its own file")
    editor = Editor.load(checkpoint, device=device)
    if swept:
        check_sweepable(editor.attributes, swept[0])
    photo = editor.open(image)
    choice = {"face": face, "all_faces": all_faces, "align": align, "locator": locator}
    if show_faces is not None:
        drawn, found = editor.draw_faces(photo, face, all_faces, locator)
        save_image(to_tensor(np.array(drawn))[0], show_faces)
        click.echo(f"{show_faces}: {found} face(s) found", err=True)
        if output is None:
            return
    if swept:
        out = sweep_row(editor, photo, *swept, parsed, mode=mode, labels=labels, **choice)
    else:
        out = (editor.compare if compare else editor.edit)(photo, parsed, mode=mode, **choice)
    save_image(to_tensor(np.array(out))[0], output)
    click.echo(str(output))


@cli.command()
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. The default serves this machine only; 0.0.0.0 opens it to your network.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port; the URL is printed).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=1),
              help="CPU threads for torch [default: torch's choice]; on a machine busy with other work, 1 is "
                   "often faster.")
@click.option("--fader-range", default="-1:2", show_default=True, metavar="MIN:MAX",
              help="The faders' span: 0 absent, 1 present, beyond extrapolates.")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="The dataset whose test images the page offers [default: the root in the checkpoint's recipe].")
@click.option("--no-test-images", is_flag=True, help="Offer no test images from the dataset.")
@click.option("--max-upload-mb", default=20.0, show_default=True, type=click.FloatRange(0.01, 1024),
              help="Largest upload accepted, in MB.")
@click.option("--max-megapixels", default=25.0, show_default=True, type=click.FloatRange(0.001, 1000),
              help="Largest image accepted, in millions of pixels (decompression bombs are refused from the header).")
@click.option("--max-side", default=1024, show_default=True, type=click.IntRange(64, 8192),
              help="A larger photo is held downscaled so that its longer side is this many pixels, keeping the "
                   "residual preview (the whole photo) live; for a full-size edit use faderkit edit.")
@click.option("--token", envvar="FADERKIT_TOKEN", metavar="TEXT",
              help="Ask every request for this token (at least 16 characters; also FADERKIT_TOKEN). Beyond "
                   "loopback one is generated and printed when none is given.")
def serve(checkpoint, host, port, device, threads, fader_range, data_root, no_test_images, max_upload_mb,
          max_megapixels, max_side, token):
    """Open the mixing console for CHECKPOINT: a local web page with one fader per attribute.

    Drop in an image (or pick one of the dataset's test images); the faders start where the model's
    classifier places the image, and the edit follows them live, in either output mode of faderkit
    edit (residual: the whole photo, changed where the model sees it; decoded: the model's own
    square), with every face in a photo aligned like the training data as edit --all-faces does (or
    the loader's crop, as edit --no-align). Nothing is written to disk but what you download. Needs the
    serve extra: pip install 'faderkit[serve]'.

    \b
      faderkit serve runs/quickstart/best.safetensors          # then open http://127.0.0.1:8000/
    """
    from .serve import serve as run_server
    from .serve.console import parse_fader_range

    span = parse_fader_range(fader_range)
    run_server(checkpoint, host, port, device=device, threads=threads, data_root=data_root, test_images=not no_test_images,
               fader_range=span, max_upload_mb=max_upload_mb, max_megapixels=max_megapixels,
               max_side=max_side, token=token, log=lambda m: click.echo(m, err=True),
               ready=lambda url: click.echo(f"faderkit console: {url}  (Ctrl-C to stop)"))


@cli.command()
@click.option("--params", "params_of", metavar="[NAME]", is_flag=False, flag_value="*",
              help="List the params (type, default, description) of every component, or of those named NAME "
                   "(a shell pattern, e.g. paper or toy*).")
@click.option("--kind", type=click.Choice(list(KINDS)), help="Only components of this kind (with --params).")
def plugins(params_of, kind):
    """List the installed plugins and what each one registers.

    \b
    faderkit plugins                          # every component, by plugin
    faderkit plugins --params                 # and the params each one takes
    faderkit plugins --params paper --kind decoder
    """
    from .listing import print_params, print_plugins
    from .plugins import registries

    if params_of is not None:
        return print_params(registries(), params_of, kind)
    print_plugins(registries(), kind)


@cli.command()
@click.argument("dataset")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--count", "-n", default=10000, show_default=True, type=click.IntRange(min=1), help="Images to write.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--layout", metavar="NAME", help="The on-disk layout to write, for datasets people download in "
              "several forms (toy faces: original, kaggle or torchvision, like CelebA's) [default: the first].")
def data(dataset, out_dir, count, seed, layout):
    """Write a synthetic DATASET (e.g. toyfaces) to OUT_DIR in its real on-disk layout."""
    from .synthetic import generate_dataset

    generate_dataset(dataset, out_dir, count, seed, layout)
    click.echo(str(out_dir))


@cli.command("eval")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--split", default="test", show_default=True, help="The dataset split to evaluate on.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where report.json, report.md and the grids go [default: eval_<split> beside the checkpoint].")
@click.option("--alpha", default=1.0, show_default=True, type=float,
              help="Slider value a for flips: code [1-a, a] towards 1, [a, 1-a] towards 0 (paper: 1; try 2).")
@click.option("--classifier", type=click.Path(dir_okay=False, path_type=Path),
              help="An attribute classifier to judge with [default: eval_classifier.safetensors beside the "
                   "checkpoint, trained on first use with another seed than the run's own].")
@click.option("--attribute", "attributes", multiple=True, metavar="NAME",
              help="Attribute(s) to draw sweep grids for (repeatable) [default: every binary attribute].")
@click.option("--sweep", "sweep_range", default="0:1:5", show_default=True, metavar="START:STOP:COUNT",
              help="Slider values of the sweep grids.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate only the first N images of the split.")
@click.option("--gt-images", default=100, show_default=True, type=click.IntRange(min=0),
              help="Images compared with ground-truth renders (datasets that can render; 0 turns it off).")
@click.option("--data-root", type=click.Path(file_okay=False, path_type=Path),
              help="Read the dataset from here instead of the root in the checkpoint's recipe.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch [default: torch's choice].")
@click.option("--quiet", is_flag=True, help="No progress messages.")
def eval_(checkpoint, split, out_dir, alpha, classifier, attributes, sweep_range, limit, gt_images, data_root,
          device, threads, quiet):
    """Measure a trained CHECKPOINT: reconstruction, swap accuracy, preservation, latent probe, ground truth.

    Every edit is measured in every output mode (local, the default of edit; residual; clean;
    decoded). Writes report.json, report.md, samples.png and one sweep_<attribute>.png per binary
    attribute in the local mode (the same with _residual, _clean and _decoded for the other modes),
    and prints the path of report.md.
    """
    from .evaluate import evaluate
    from .sliders import parse_values

    values = parse_values(sweep_range, "--sweep")
    out_dir = out_dir or checkpoint.parent / f"eval_{split}"
    log = (lambda m: None) if quiet else (lambda m: click.echo(m, err=True))
    report = evaluate(checkpoint, out_dir, split=split, alpha=alpha, classifier=classifier, device=device,
                      limit=limit, gt_images=gt_images, sweep_attributes=attributes or None, sweep_values=values,
                      data_root=data_root, threads=threads, progress=not quiet, log=log)
    if not quiet:
        rc = report["reconstruction"]
        pct = lambda v: "n/a" if v is None else format(v, ".1%")  # noqa: E731
        modes = "; ".join(f"{m}: swap accuracy {pct(report['swap_accuracy'][m]['mean'])}, preservation "
                          f"{pct(report['preservation'][m]['mean'])}" for m in report["output_modes"]["modes"])
        click.echo(f"PSNR {rc['psnr']:.2f} dB, SSIM {rc['ssim']:.3f}; {modes}", err=True)
    click.echo(str(out_dir / "report.md"))


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the PNG [default: RUN_DIR/curves.png].")
def curves(run_dir, output):
    """Draw the loss and metric curves of a run (from its metrics.jsonl) to a PNG."""
    from .curves import plot_curves

    click.echo(str(plot_curves(run_dir, output)))


@cli.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--grid", multiple=True, metavar="KEY=V1,V2,...",
              help="With a recipe as SOURCE: an axis of the grid, e.g. --grid train.objective.edge_weight=0,2,5 (repeatable).")
@click.option("--seeds", metavar="S1,S2,...", help="Seeds of every variant [default: the sweep file's, else 0].")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="An override for every run (repeatable).")
@click.option("--name", help="The sweep's folder under --root [default: the sweep file's name].")
@click.option("--only", metavar="V1,V2,...", help="Run only these variants of the sweep file.")
@click.option("--root", default="runs", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--executor", help="A registered executor: local, ray, submitit, ... (faderkit plugins --kind executor "
              "--params) [default: the sweep file's executor.name, else local].")
@click.option("--jobs", "-j", type=click.IntRange(min=1),
              help="Runs at a time (local; submitit: runs submitted at a time) [default: the sweep file's, else 1].")
@click.option("--threads", type=click.IntRange(min=1),
              help="CPU threads per run (submitit: each job's CPUs) [default: the cores / --jobs].")
@click.option("--address", help="ray: auto (a running cluster) or HOST:PORT [default: start a local Ray].")
@click.option("--executor-param", "-x", "executor_params", multiple=True, metavar="KEY=VALUE",
              help="An option of the executor, the value read as YAML (repeatable), over the sweep file's "
                   "executor.params, e.g. for submitit: "
                   "-x partition=cpu -x timeout_min=120 -x mem_gb=16 -x gpus_per_node=1 -x account=lab -x qos=normal "
                   "-x 'slurm={constraint: a100}' -x cluster=auto|slurm|local|debug -x folder=DIR.")
def sweep(source, grid, seeds, sets, name, only, root, executor, jobs, threads, address, executor_params):
    """Train and evaluate every variant x seed of a sweep file (or of a recipe with --grid), then compare them.

    \b
      faderkit sweep recipes/sweeps/third_round.yaml --jobs 2
      faderkit sweep recipes/quickstart.yaml --grid train.objective.edge_weight=0,2,5 --seeds 0,1
      faderkit sweep recipes/sweeps/edits.yaml --executor submitit -x partition=cpu --jobs 10 --threads 8
    Writes ROOT/NAME/report.md (mean and spread over seeds, differences within the seed spread
    marked as noise). Started again, it skips finished runs and evals and resumes the others.
    """
    from .sweep import sweep as run
    from .sweep.spec import parse_sets

    params = parse_sets(executor_params, "--executor-param", "partition=cpu")
    if "jobs" in params:
        raise FaderkitError("give the runs at a time as --jobs N, not as --executor-param jobs=N")
    if address:
        params["address"] = address
    click.echo(str(run(source, root, grid=grid, seeds=seeds, sets=sets, name=name,
                       only=only.split(",") if only else None, executor=executor, jobs=jobs,
                       threads=threads, executor_params=params, log=lambda m: click.echo(m, err=True))))


def main():
    cli(prog_name="faderkit")


if __name__ == "__main__":
    main()
