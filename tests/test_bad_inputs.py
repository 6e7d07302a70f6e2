"""The bad-input corpus: what a user could hand faderkit, and what faderkit must do with it.

Every case builds its input in a private workspace that also holds earlier results: a trained run
(checkpoints, samples, metrics), a previous output image, a previous eval report, a dataset with
its image cache. It then runs through the CLI (``faderkit train / edit / eval``) or the Python API.

- A bad input must end in one line (``Error: ...`` on stderr, or a FaderkitError whose message has
  no newline) that matches what was wrong, a non-zero exit, no traceback, and every file that was
  in the workspace before still there and byte-identical. Nothing new may appear either, except an
  image cache (a by-product a later run reuses).
- An odd but usable input (16-bit, CMYK, palette, 1x1, ...) must be processed, twice to the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import save_file

import faderkit
from faderkit import FaderkitError
from faderkit import checkpoint as ckpt
from faderkit.cli import cli
from faderkit.recipe import load_recipe

from conftest import generated, tiny_recipe

FACE = "img_align_celeba/000055.jpg"  # a test-split toy face


# ---------------------------------------------------------------- the workspace

class Workspace:
    """A folder of earlier results for one case; each part is made on first use."""

    def __init__(self, root: Path, trained_run: Path, toy_root: Path, flowers_root: Path):
        self.root, self._trained, self._toy, self._flowers = root, trained_run, toy_root, flowers_root

    @cached_property
    def run(self) -> Path:
        return Path(shutil.copytree(self._trained, self.root / "run"))

    @property
    def ckpt(self) -> Path:
        return self.run / "best.safetensors"

    @cached_property
    def face(self) -> Path:
        return Path(shutil.copy(self._toy / FACE, self.root / "face.jpg"))

    @cached_property
    def out(self) -> Path:
        """An earlier edit: a failed edit must leave it as it was."""
        path = self.root / "out.png"
        Image.new("RGB", (32, 32), (10, 200, 30)).save(path)
        return path

    @cached_property
    def report_dir(self) -> Path:
        """An earlier eval report: a failed eval must leave it as it was."""
        d = self.root / "eval_prev"
        d.mkdir()
        (d / "report.md").write_text("# an earlier report\n")
        return d

    @cached_property
    def data(self) -> Path:
        """A copy of the toy faces (CelebA layout, with the cache built by the session's run)."""
        return Path(shutil.copytree(self._toy, self.root / "faces"))

    @cached_property
    def flowers(self) -> Path:
        return Path(shutil.copytree(self._flowers, self.root / "flowers"))

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.root / name
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def recipe(self, text: str | None = None, data: Path | None = None, name: str = "celeba", **edits) -> Path:
        """The tiny recipe on ``data`` (default: the copied faces) with dotted ``edits``
        (``model__n_layers=7``), or ``text`` verbatim."""
        if text is None:
            raw = tiny_recipe(data or self.data)
            raw["data"]["name"] = name
            raw["data"]["params"] = {}
            for dotted, value in edits.items():
                *parents, leaf = dotted.split("__")
                node = raw
                for p in parents:
                    node = node.setdefault(p, {})
                node[leaf] = value
            text = yaml.safe_dump(raw)
        return self.file("r.yaml", text)

    def train(self, *args) -> list:
        return ["train", str(self.recipe_path), "--run-dir", str(self.root / "new_run"), "--quiet", *args]

    def sweep(self, *args) -> list:
        return ["sweep", str(self.recipe_path), "--root", str(self.root / "runs"), "--executor", "submitit", *args]

    @property
    def recipe_path(self) -> Path:
        return self.root / "r.yaml"

    def edit(self, image=None, *args, ckpt=None, out=None) -> list:
        return ["edit", str(image or self.face), "-c", str(ckpt or self.ckpt), "-o", str(out or self.out), *args]

    def snapshot(self) -> dict[str, str]:
        return {str(p.relative_to(self.root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(self.root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- image makers

def _png(width: int, height: int, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def bomb_png(side: int) -> bytes:
    """A 1-bit black square of side x side pixels: a few kB on disk, side^2 pixels once decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)
    z = zlib.compressobj(9)
    return _png(side, side, 1, 0, b"".join(z.compress(row) for _ in range(side)) + z.flush())


def rgb48_png() -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot write one)."""
    rng = np.random.default_rng(3)
    rows = b"".join(b"\x00" + rng.integers(0, 256, 40 * 6, dtype=np.uint8).tobytes() for _ in range(30))
    return _png(40, 30, 16, 2, zlib.compress(rows))


def _rgb(h=80, w=60, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _saved(img: Image.Image, fmt: str, **kw) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def truncated_jpeg(w: Workspace) -> bytes:
    return w.face.read_bytes()[:400]


def exif_rotated_jpeg() -> bytes:
    img = Image.fromarray(_rgb())
    exif = img.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    return _saved(img, "JPEG", exif=exif, quality=95)


def pickle_bomb(marker: Path) -> bytes:
    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    return pickle.dumps(Payload())


def torch_zip(path: Path) -> Path:
    torch.save({"model.encoder.weight": torch.ones(2)}, path)
    return path


def flipped(src: Path, dst: Path, where: Callable[[bytes], int]) -> Path:
    raw = bytearray(src.read_bytes())
    raw[where(bytes(raw))] ^= 0x10
    dst.write_bytes(bytes(raw))
    return dst


def rewritten(src: Path, dst: Path, change: Callable[[dict], None]) -> Path:
    """A consistent checkpoint (valid checksum) whose metadata says something else."""
    tensors, meta = ckpt.load(src)
    change(meta)
    ckpt.save(dst, tensors, meta)
    return dst


def placed_faces(w: "Workspace", count: int = 1, scale: float = 1.2) -> Path:
    """A 900 x 500 picture with ``count`` toy faces drawn into it (turned, enlarged), as a PNG."""
    from faderkit_plugins.toyfaces.scene import backdrop, place

    photo = backdrop(900, 500)
    face = np.asarray(Image.open(w.face).convert("RGB"))
    for k in range(count):
        photo, _ = place(face, photo, 10 - 20 * k, scale, (250 + 400 * k, 250))
    return w.file(f"faces{count}_{scale}.png", _saved(Image.fromarray(photo), "PNG"))


def without_template(m: dict) -> None:
    m["preprocess"] = {k: v for k, v in m["preprocess"].items() if k not in ("landmarks", "face_locator")}


def plain_safetensors(path: Path) -> Path:
    save_file({"w": torch.ones(2)}, str(path))
    return path


def edit_lines(path: Path, change: Callable[[list[str]], list[str]]) -> None:
    path.write_text("\n".join(change(path.read_text().splitlines())) + "\n")


def other_architecture(meta: dict) -> None:
    meta["recipe"]["model"]["init_fm"] = 16


def classifier_of_other_attributes(meta: dict) -> None:
    meta["attributes"] = [{"name": "Male", "values": ["0", "1"]}, {"name": "Bangs", "values": ["0", "1"]}]


# ---------------------------------------------------------------- the CLI cases: (workspace -> argv, error)

def _bad_header_json(raw: bytes) -> int:
    return 8 + raw[8:].index(b'"dtype"') + 2  # a letter of a key of the safetensors header


CLI_CASES: dict[str, tuple[Callable[[Workspace], list], str]] = {
    # images given to edit (the earlier output out.png must survive each)
    "image: zero bytes": (lambda w: w.edit(w.file("empty.jpg", b"")), r"empty\.jpg is an empty file"),
    "image: truncated JPEG": (lambda w: w.edit(w.file("cut.jpg", truncated_jpeg(w))), r"cannot read image .*cut\.jpg"),
    "image: text file named .jpg": (lambda w: w.edit(w.file("notes.jpg", "just some notes\n")),
                                    r"notes\.jpg is not in an image format faderkit can read"),
    "image: decompression bomb PNG (900 Mpx)": (lambda w: w.edit(w.file("bomb.png", bomb_png(30000))),
                                               r"bomb\.png declares .*decompression bomb"),
    "image: PNG over the 64 Mpx limit": (lambda w: w.edit(w.file("big.png", bomb_png(8200))),
                                        r"big\.png declares 8200x8200 pixels \(67 MP\), over the limit of 64 MP"),
    "image: missing": (lambda w: w.edit(w.root / "nowhere.jpg"), r"image not found: .*nowhere\.jpg"),
    "image: a folder": (lambda w: w.edit(w.root), r"is a folder, not an image"),
    "output: unknown suffix": (lambda w: w.edit(None, out=w.root / "out.xyz"), r"unknown image suffix '\.xyz'"),
    "output: folder missing": (lambda w: w.edit(None, out=w.root / "no" / "o.png"), r"folder .*no does not exist"),
    "output: the input itself": (lambda w: w.edit(None, out=w.face), r"is the input image; .*--overwrite-input"),
    # --set and --sweep on edit
    "--set: unknown attribute": (lambda w: w.edit(None, "--set", "Smilng=1"),
                                 r"unknown attribute 'Smilng'; this model has: Smiling, Eyeglasses"),
    "--set: not a number": (lambda w: w.edit(None, "--set", "Smiling=lots"), r"Smiling=lots: expected a number"),
    "--set: NaN": (lambda w: w.edit(None, "--set", "Smiling=nan"), r"Smiling=nan: expected a finite number"),
    "--set: inf": (lambda w: w.edit(None, "--set", "Smiling=inf"), r"Smiling=inf: expected a finite number"),
    "--set: -inf": (lambda w: w.edit(None, "--set", "Eyeglasses=-inf"), r"expected a finite number"),
    "--set: huge": (lambda w: w.edit(None, "--set", "Smiling=1e30"), r"sliders go from -10 to 10"),
    "--set: empty value": (lambda w: w.edit(None, "--set", "Smiling="), r"malformed --set 'Smiling='"),
    "--set: empty name": (lambda w: w.edit(None, "--set", "=1"), r"malformed --set '=1'"),
    "--set: empty": (lambda w: w.edit(None, "--set", ""), r"malformed --set ''"),
    "--set: no '='": (lambda w: w.edit(None, "--set", "Smiling"), r"malformed --set 'Smiling'"),
    "--set: given twice": (lambda w: w.edit(None, "--set", "Smiling=1", "--set", "Smiling=0"),
                           r"--set Smiling is given twice"),
    "--sweep: bad range": (lambda w: w.edit(None, "--sweep", "Smiling=0:x:5"), r"--sweep"),
    "--device: unknown": (lambda w: w.edit(None, "--device", "banana"), r"unknown device 'banana'"),
    # recipes given to train (no run directory may appear)
    "recipe: missing file": (lambda w: w.train(), r"cannot read recipe .*r\.yaml: No such file"),
    "recipe: YAML syntax error": (lambda w: (w.recipe("data:\n  name: celeba\n  root: [unclosed\ntrain: {}\n"), w.train())[1],
                                  r"not valid YAML at line \d+, column \d+"),
    "recipe: not UTF-8": (lambda w: (w.file("r.yaml", b"\xff\xfe\x00garbage\x81"), w.train())[1], r"is not UTF-8 text"),
    "recipe: empty file": (lambda w: (w.recipe(""), w.train())[1], r"data: required key is missing"),
    "recipe: a list": (lambda w: (w.recipe("- data\n- train\n"), w.train())[1], r"must be a mapping of sections"),
    "recipe: unknown top-level key": (lambda w: (w.recipe(trainng={"steps": 3}), w.train())[1], r"trainng: unknown key"),
    "recipe: unknown nested key": (lambda w: (w.recipe(train__stepz=3), w.train())[1], r"train\.stepz: unknown key"),
    "recipe: unknown key in a group": (lambda w: (w.recipe(train__adversary__dis_stepz=3), w.train())[1],
                                       r"train\.adversary\.dis_stepz: unknown key"),
    "recipe: wrong type": (lambda w: (w.recipe(train__schedule__steps="many"), w.train())[1], r"train\.schedule\.steps: .*integer"),
    "recipe: negative batch size": (lambda w: (w.recipe(train__schedule__batch_size=-4), w.train())[1],
                                    r"train\.schedule\.batch_size: .*greater than or equal to 1"),
    "recipe: NaN learning rate": (lambda w: (w.recipe(train__schedule__lr=float("nan")), w.train())[1], r"train\.schedule\.lr: .*finite"),
    "recipe: image size not a power of two": (lambda w: (w.recipe(data__image_size=100), w.train())[1],
                                              r"image_size must be a power of two"),
    "recipe: image size the architecture cannot take": (lambda w: (w.recipe(model__n_layers=6), w.train())[1],
                                                        r"model\.n_layers 6 halves data\.image_size 32 below one pixel"),
    "recipe: unknown dataset": (lambda w: (w.recipe(name="celebb"), w.train())[1], r"celebb.*celeba"),
    "recipe: unknown encoder": (lambda w: (w.recipe(model__encoder={"name": "resnet"}), w.train())[1], r"resnet.*paper"),
    "recipe: unknown dataset parameter": (lambda w: (w.recipe(data__params={"colour": 1}), w.train())[1],
                                          r"data\.params\.colour: unknown key \(accepted: cache_dir, unreadable\)"),
    "recipe: misspelled decoder param, before any data is made": (
        lambda w: (w.recipe(name="toyfaces", data__root=str(w.root / "fresh"), model__decoder={
            "name": "paper", "params": {"upsampel": "nearest"}}), w.train())[1],
        r"model\.decoder\.params\.upsampel: unknown key \(accepted: upsample, norm, dropout, n_skip, head, change_width, refine, refine_layers, film, coords\)"),
    "recipe: a decoder variant that does not exist": (
        lambda w: (w.recipe(model__decoder={"name": "paper", "params": {"upsample": "bicubic"}}), w.train())[1],
        r"model\.decoder\.params\.upsample: 'bicubic' is not a choice; choose one of: deconv, nearest, pixelshuffle"),
    "recipe: true for a whole-number param": (
        lambda w: (w.recipe(name="toyfaces", data__params={"count": True}), w.train())[1],
        r"data\.params\.count: expected int >= 10, got true"),
    "recipe: params not a mapping": (lambda w: (w.recipe(classifier__params=[1, 2]), w.train())[1],
                                     r"classifier\.params: Input should be a valid dictionary"),
    "recipe: a bad patch discriminator param": (
        lambda w: (w.recipe(model__patch_discriminator={"name": "patch", "params": {"init_fm": 0.5}}), w.train())[1],
        r"model\.patch_discriminator\.params\.init_fm: expected int in \[1, 65536\], got 0\.5"),
    "recipe: --set unknown key": (lambda w: (w.recipe(), w.train("--set", "train.foo=1"))[1], r"train\.foo: unknown key"),
    "recipe: --set malformed": (lambda w: (w.recipe(), w.train("--set", "train.schedule.steps"))[1], r"malformed --set"),
    "recipe: --set into a value": (lambda w: (w.recipe(), w.train("--set", "train.schedule.steps.x=1"))[1], r"'steps' is a value"),
    # datasets (CelebA layout) given to train
    "data: root missing": (lambda w: (w.recipe(data__root=str(w.root / "nope")), w.train())[1], r"does not exist"),
    "data: attribute file missing": (lambda w: ((w.data / "list_attr_celeba.txt").unlink(), w.recipe(), w.train())[2],
                                     r"lacks list_attr_celeba\.txt"),
    "data: image folder missing": (lambda w: (shutil.rmtree(w.data / "img_align_celeba"), w.recipe(), w.train())[2],
                                   r"lacks img_align_celeba/"),
    "data: short attribute line": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt",
                                                         lambda ls: ls[:5] + [ls[5].rsplit(" ", 2)[0]] + ls[6:]),
                                              w.recipe(), w.train())[2],
                                   r"list_attr_celeba\.txt line 6: expected a file name and 5 values, found 3"),
    "data: bad attribute value": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt",
                                                        lambda ls: ls[:4] + [ls[4][:-2] + " 2"] + ls[5:]),
                                             w.recipe(), w.train())[2],
                                  r"line 5: Bangs is '2'; values must be 1 or -1"),
    "data: count line wrong": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt", lambda ls: ["61"] + ls[1:]),
                                          w.recipe(), w.train())[2], r"line 1 says 61 images but 60"),
    "data: unknown attribute name": (lambda w: (w.recipe(data__attributes=["Smiling", "Wings"]), w.train())[1],
                                     r"has no attribute 'Wings'.*available: Smiling"),
    "data: duplicate ids": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt",
                                                  lambda ls: ls[:3] + [ls[2]] + ls[4:]), w.recipe(), w.train())[2],
                            r"000001\.jpg is listed twice"),
    "data: listed image missing": (lambda w: ((w.data / "img_align_celeba" / "000013.jpg").unlink(), w.recipe(),
                                              w.train())[2],
                                   r"000013\.jpg is listed in list_attr_celeba\.txt but missing"),
    "data: image missing from the partition list": (lambda w: (edit_lines(w.data / "list_eval_partition.txt",
                                                                          lambda ls: ls[1:]), w.recipe(), w.train())[2],
                                                    r"000001\.jpg .*is missing from .*list_eval_partition\.txt"),
    "data: unreadable image (unreadable: stop)": (lambda w: ((w.data / "img_align_celeba" / "000013.jpg").write_text("x"),
                                                             w.recipe(), w.train())[2],
                                                  r"cannot read image .*000013\.jpg: .*unreadable: skip"),
    "data: a root holding no CelebA layout": (lambda w: ((w.root / "photos").mkdir(),
                                                         w.recipe(data__root=str(w.root / "photos")), w.train())[2],
                                              r"no CelebA in .*photos or its sub-folders: looked for the original "
                                              r"layout .*, the Kaggle layout .* and torchvision's"),
    "data: two CelebA copies under the root": (lambda w: (shutil.copytree(w.data, w.root / "both" / "a"),
                                                          shutil.copytree(w.data, w.root / "both" / "b"),
                                                          w.recipe(data__root=str(w.root / "both")), w.train())[3],
                                               r"holds several CelebA folders \(a, b\)"),
    "data: CSV labels separated by semicolons": (lambda w: (_to_csv(w.data, ";"), w.recipe(), w.train())[2],
                                                 r"list_attr_celeba\.csv line 1: .*separated by ';'"),
    "data: CSV labels with a missing value": (lambda w: (_to_csv(w.data, ",", blank=(4, 2)), w.recipe(), w.train())[2],
                                              r"list_attr_celeba\.csv line 4: expected a file name and 5 values, found 4"),
    "data: oxford102 setid.mat missing": (lambda w: ((w.flowers / "setid.mat").unlink(),
                                                     w.recipe(name="oxford102", data=w.flowers, data__attributes=None),
                                                     w.train())[2], r"lacks setid\.mat"),
    "data: oxford102 caption file with 9 lines": (lambda w: (_drop_a_caption(w.flowers),
                                                             w.recipe(name="oxford102", data=w.flowers,
                                                                      data__attributes=None), w.train())[2],
                                                  r"\.txt.* 9 .*10"),
    # checkpoints given to edit, eval and train --resume
    "checkpoint: truncated": (lambda w: w.edit(None, ckpt=w.file("cut.safetensors", w.ckpt.read_bytes()[:5000])),
                              r"not a readable faderkit checkpoint: damaged or truncated"),
    "checkpoint: empty file": (lambda w: w.edit(None, ckpt=w.file("empty.safetensors", b"")),
                               r"not a readable faderkit checkpoint"),
    "checkpoint: bit flipped in the weights": (lambda w: w.edit(None, ckpt=flipped(w.ckpt, w.root / "flip.safetensors",
                                                                                   lambda raw: len(raw) - 777)),
                                               r"flip\.safetensors is damaged: .*checksum"),
    "checkpoint: bit flipped in the header": (lambda w: w.edit(None, ckpt=flipped(w.ckpt, w.root / "flip.safetensors",
                                                                                  _bad_header_json)),
                                              r"flip\.safetensors (is not a readable|is damaged)"),
    "checkpoint: pickle that would run code": (lambda w: w.edit(None, ckpt=w.file("evil.safetensors",
                                                                                  pickle_bomb(w.root / "pwned"))),
                                               r"a pickle \(faderkit never unpickles files\)"),
    "checkpoint: torch.save file": (lambda w: w.edit(None, ckpt=torch_zip(w.root / "model.pt")),
                                    r"model\.pt is not a readable faderkit checkpoint"),
    "checkpoint: plain safetensors": (lambda w: w.edit(None, ckpt=plain_safetensors(w.root / "other.safetensors")),
                                      r"not a faderkit checkpoint \(no faderkit metadata\)"),
    "checkpoint: a classifier given to edit": (lambda w: w.edit(None, ckpt=w.run / "classifier.safetensors"),
                                               r"classifier checkpoint, not a trained fader model"),
    "checkpoint: missing": (lambda w: w.edit(None, ckpt=w.root / "none.safetensors"), r"checkpoint not found"),
    "checkpoint: another architecture (edit)": (lambda w: w.edit(None, ckpt=rewritten(w.ckpt, w.root / "arch.safetensors",
                                                                                      other_architecture)),
                                                r"weights do not fit the architecture in its own recipe"),
    "checkpoint: another architecture (train --resume)": (
        lambda w: (w.recipe(name="toyfaces", model__init_fm=16), ["train", str(w.recipe_path), "--run-dir", str(w.run), "--resume", "--quiet"])[1],
        r"trained with model\.init_fm = 8, this recipe has 16"),
    "checkpoint: another attribute set (train --resume)": (
        lambda w: (w.recipe(name="toyfaces", data__attributes=["Smiling", "Male"]),
                   ["train", str(w.recipe_path), "--run-dir", str(w.run), "--resume", "--quiet"])[1],
        r"trained with data\.attributes = \['Smiling', 'Eyeglasses'\], this recipe has \['Smiling', 'Male'\]"),
    "checkpoint: classifier of another attribute set (eval)": (
        lambda w: ["eval", str(w.ckpt), "--out", str(w.report_dir), "--quiet", "--classifier",
                   str(rewritten(w.run / "classifier.safetensors", w.root / "judge.safetensors",
                                 classifier_of_other_attributes))],
        r"does not know attribute\(s\) Smiling, Eyeglasses"),
    "checkpoint: bit flipped (eval)": (lambda w: ["eval", str(flipped(w.ckpt, w.root / "flip.safetensors",
                                                                      lambda raw: len(raw) - 99)),
                                                  "--out", str(w.report_dir), "--quiet"], r"is damaged"),
    # run directories
    "run dir: already holds a run": (lambda w: (w.recipe(), ["train", str(w.recipe_path), "--run-dir", str(w.run), "--quiet"])[1],
                                     r"already holds a run; pass --resume"),
    "run dir: --resume with nothing there": (lambda w: (w.recipe(), w.train("--resume"))[1], r"nothing to resume"),
    "run dir: --resume into a folder that is not a run": (
        lambda w: (w.recipe(), ["train", str(w.recipe_path), "--run-dir", str(w.data), "--resume", "--quiet"])[1],
        r"holds no faderkit run"),
    "run dir: a file": (lambda w: (w.recipe(), ["train", str(w.recipe_path), "--run-dir", str(w.face), "--quiet"])[1],
                        r"run directory .*face\.jpg is a file"),
    "run dir: another process is training there": (lambda w: (w.recipe(), _hold_lock(w.run),
                                                               ["train", str(w.recipe_path), "--run-dir", str(w.run),
                                                                "--resume", "--quiet"])[2],
                                                   r"another faderkit process is training in"),
    # sweep executors: their options are checked before the sweep makes anything
    "sweep: an unknown executor option": (lambda w: (w.recipe(), w.sweep("-x", "partiton=cpu"))[1],
                                          r"executor 'submitit': params\.partiton: unknown key \(accepted: .*partition"),
    "sweep: an executor option of the wrong type": (lambda w: (w.recipe(), w.sweep("-x", "gpus_per_node=two"))[1],
                                                    r"params\.gpus_per_node: expected int in \[0, 64\], got 'two'"),
    # found by review: each of these once escaped as a traceback, a hang, or a silent overwrite
    "curves: -o onto a checkpoint": (lambda w: ["curves", str(w.run), "-o", str(w.ckpt)], r"written as PNG"),
    "curves: -o onto a file that is not a PNG": (lambda w: ["curves", str(w.run), "-o", str(w.file("notes.png", "text"))],
                                                 r"exists and is not a PNG image; it is left alone"),
    "eval: --data-root missing": (lambda w: ["eval", str(w.ckpt), "--out", str(w.report_dir), "--data-root",
                                             str(w.root / "typo")], r"--data-root .*typo is not a folder"),
    "eval: a split left empty": (lambda w: (edit_lines(w.data / "list_eval_partition.txt",
                                                       lambda ls: [l.replace(" 2", " 0") for l in ls]),
                                            ["eval", str(w.ckpt), "--out", str(w.report_dir), "--data-root",
                                             str(w.data)])[1],
                                 r"the test split of .* has no images; evaluation reads its images"),
    "eval: --alpha inf": (lambda w: ["eval", str(w.ckpt), "--out", str(w.report_dir), "--alpha", "inf"],
                          r"--alpha inf: must be above 0\.5 .*at most 10"),
    "eval: --sweep beyond the sliders": (lambda w: ["eval", str(w.ckpt), "--out", str(w.report_dir),
                                                    "--sweep=-1e300:1e300:3"], r"sliders go from -10 to 10"),
    "eval: a new --out and a missing judge": (lambda w: ["eval", str(w.ckpt), "--out", str(w.root / "new_eval"),
                                                         "--classifier", str(w.root / "none.safetensors")],
                                              r"not found"),
    "recipe: negative seed": (lambda w: (w.recipe(train__schedule__seed=-1), w.train())[1], r"train\.schedule\.seed: .*greater than or equal to 0"),
    "recipe: absurd learning rate": (lambda w: (w.recipe(train__schedule__lr=1e300), w.train())[1], r"train\.schedule\.lr: .*less than or equal to 1"),
    "recipe: a discriminator of width 0": (lambda w: (w.recipe(model__discriminator={"name": "latent",
                                                                                   "params": {"hid_dim": 0}}),
                                                      w.train())[1],
                                          r"model\.discriminator\.params\.hid_dim: expected int in \[1, 65536\], got 0"),
    "recipe: nested too deeply": (lambda w: (w.recipe("data: " + "[" * 3000 + "]" * 3000 + "\n"), w.train())[1],
                                  r"nested too deeply"),
    "recipe: NUL in the data root": (lambda w: (w.recipe(data__root="/tmp/a\0b"), w.train())[1], r"NUL"),
    "recipe: a pipe": (lambda w: (os.mkfifo(w.root / "r.yaml"), w.train())[1], r"is not a regular file"),
    "image: a pipe": (lambda w: (os.mkfifo(w.root / "pipe.jpg"), w.edit(w.root / "pipe.jpg"))[1],
                      r"pipe\.jpg is not a regular file"),
    "output: a format Pillow reads but cannot write": (lambda w: w.edit(None, out=w.root / "out.psd"),
                                                       r"Pillow cannot write '\.psd'"),
    "--device: mps on a machine without one": (lambda w: w.edit(None, "--device", "mps"), r"no Apple GPU"),
    "usage: edit without -o": (lambda w: ["edit", str(w.face), "-c", str(w.ckpt)],
                               r"give -o OUTPUT for the edit \(or only --show-faces PATH"),
    "data: a split left empty": (lambda w: (edit_lines(w.data / "list_eval_partition.txt",
                                                       lambda ls: [l.replace(" 1", " 0") for l in ls]),
                                            w.recipe(), w.train())[2], r"the valid split of .* has no images"),
    "checkpoint: metadata without attributes": (lambda w: w.edit(None, ckpt=rewritten(w.ckpt, w.root / "m.safetensors",
                                                                                      lambda m: m.pop("attributes"))),
                                                r"its metadata has no valid attribute list"),
    "checkpoint: crop box outside the image": (lambda w: w.edit(None, ckpt=rewritten(
        w.ckpt, w.root / "m.safetensors", lambda m: m.update(preprocess={"native_size": [178, 218],
                                                                         "crop_box": [0, 20, 300, 198]}))),
        r"crop box \[0, 20, 300, 198\] that does not fit"),
    # finding and choosing faces (edit aligns a photo by its face)
    "faces: none in the photo": (lambda w: w.edit(w.file("plain.png", _saved(Image.fromarray(_rgb(300, 400)), "PNG"))),
                                 r"no face found in the image by the 'toyfaces' face locator; try another locator with "
                                 r"--locator NAME \(locator=NAME\): mtcnn; or pass --no-align"),
    "faces: two, none chosen": (lambda w: w.edit(placed_faces(w, 2)), r"2 faces large enough to edit; choose one with "
                                                                       r"--face N .* --all-faces"),
    "faces: --face beyond the faces found": (lambda w: w.edit(placed_faces(w), "--face", "3"),
                                             r"--face 3: the image has 1 face\(s\), numbered 1 left to right"),
    "faces: --face 0": (lambda w: w.edit(placed_faces(w), "--face", "0"), r"--face.*0 is not in the range x>=1"),
    "faces: --face and --all-faces": (lambda w: w.edit(placed_faces(w), "--face", "1", "--all-faces"),
                                      r"--face and --all-faces: choose one"),
    "faces: --face with --no-align": (lambda w: w.edit(placed_faces(w), "--face", "1", "--no-align"),
                                      r"choose among aligned faces; leave out --no-align"),
    "faces: too small": (lambda w: w.edit(placed_faces(w, scale=0.15)), r"(too small|no face found).*--no-align"),
    "faces: unknown locator": (lambda w: w.edit(placed_faces(w), "--locator", "dlib"),
                               r"unknown face_locator 'dlib'; choose one of: mtcnn, toyfaces"),
    "faces: all faces in the decoded mode": (lambda w: w.edit(placed_faces(w, 2), "--all-faces", "--mode", "decoded"),
                                             r"the decoded mode shows one face"),
    "faces: --show-faces is the input": (lambda w: ["edit", str(w.face), "-c", str(w.ckpt), "--show-faces", str(w.face)],
                                         r"--show-faces .* is the input image"),
    "faces: -o and --show-faces the same file": (lambda w: w.edit(placed_faces(w), "--show-faces", str(w.out)),
                                                 r"-o and --show-faces both name"),
    "faces: --align on a model without a template": (lambda w: w.edit(placed_faces(w), "--align", ckpt=rewritten(
        w.ckpt, w.root / "nt.safetensors", without_template)), r"declares no landmark template; leave out --align"),
    "checkpoint: a landmark template without eyes": (lambda w: w.edit(None, ckpt=rewritten(
        w.ckpt, w.root / "lm.safetensors", lambda m: m["preprocess"].update(landmarks={"nose": [1, 2]}))),
        r"landmark template that is not two distinct eyes"),
    "checkpoint: negative step (train --resume)": (
        lambda w: (rewritten(w.run / "last.safetensors", w.run / "last.safetensors", lambda m: m.update(step=-3)),
                   w.recipe(name="toyfaces"),
                   ["train", str(w.recipe_path), "--run-dir", str(w.run), "--resume", "--quiet"])[2],
        r"is not a fader training checkpoint \(kind 'fader', step -3\)"),
    # serve: every refusal comes before the server starts (none of these may ever listen)
    "serve: checkpoint not found": (lambda w: ["serve", str(w.root / "none.safetensors"), "--port", "0"],
                                    r"checkpoint not found"),
    "serve: a classifier checkpoint": (lambda w: ["serve", str(w.run / "classifier.safetensors"), "--port", "0"],
                                       r"not a trained fader model"),
    "serve: malformed --fader-range": (lambda w: ["serve", str(w.ckpt), "--fader-range", "-1..2"],
                                       r"--fader-range '-1\.\.2': expected MIN:MAX"),
    "serve: --fader-range without 1 (present)": (lambda w: ["serve", str(w.ckpt), "--fader-range", "-1:0.5"],
                                                 r"so that 0 \(absent\) and 1 \(present\) are on the fader"),
    "serve: --data-root not a folder": (lambda w: ["serve", str(w.ckpt), "--port", "0", "--data-root",
                                                   str(w.root / "nowhere")], r"--data-root .* is not a folder"),
    "serve: port already in use": (lambda w: ["serve", str(w.ckpt), "--port", str(_busy_port())],
                                   r"port \d+ on 127\.0\.0\.1 is already in use .* --port 0 for any free port"),
    "serve: port out of range": (lambda w: ["serve", str(w.ckpt), "--port", "70000"],
                                 r"70000 is not in the range 0<=x<=65535"),
    "serve: zero upload limit": (lambda w: ["serve", str(w.ckpt), "--max-upload-mb", "0"],
                                 r"--max-upload-mb.*0\.01<=x<=1024"),
    "serve: --max-side below the smallest preview": (lambda w: ["serve", str(w.ckpt), "--max-side", "10"],
                                                     r"--max-side.*64<=x<=8192"),
}


def _to_csv(root: Path, sep: str, blank: tuple[int, int] | None = None) -> None:
    """Replace list_attr_celeba.txt by a Kaggle-style CSV with ``sep``; ``blank``: (line, column) left empty."""
    lines = (root / "list_attr_celeba.txt").read_text().split("\n")[1:]
    rows = [["image_id", *lines[0].split()]] + [line.split() for line in lines[1:] if line.strip()]
    if blank:
        rows[blank[0] - 1][blank[1]] = ""
    (root / "list_attr_celeba.csv").write_text("\n".join(sep.join(r) for r in rows) + "\n")
    (root / "list_attr_celeba.txt").unlink()


def _busy_port() -> int:
    """A localhost port held open (listening) until the case ends."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    port = sock.getsockname()[1]
    _held.append(sock.detach())  # closed by _release_locks
    return port


def _drop_a_caption(root: Path) -> None:
    path = next((root / "text_c10").rglob("*.txt"))
    edit_lines(path, lambda ls: ls[:9])


_held: list = []


def _hold_lock(run: Path) -> None:
    """Lock the run as a training process would (flock conflicts between open files, even in one process)."""
    import fcntl

    fd = os.open(run / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held.append(fd)


@pytest.fixture(autouse=True)
def _release_locks():
    yield
    while _held:
        os.close(_held.pop())


# ---------------------------------------------------------------- the API cases: (workspace -> call, error)

def call(fn, *args, **kwargs) -> Callable[[], object]:
    """The API call to make, its arguments (the inputs) made now, before the snapshot."""
    return lambda: fn(*args, **kwargs)


def load_and_edit(checkpoint: Path, image, **settings):
    return faderkit.load(checkpoint).edit(image, **settings)


API_CASES: dict[str, tuple[Callable[[Workspace], Callable], str]] = {
    "api image: zero bytes": (lambda w: call(load_and_edit, w.ckpt, w.file("e.jpg", b""), Smiling=1), r"is an empty file"),
    "api image: truncated JPEG": (lambda w: call(load_and_edit, w.ckpt, w.file("c.jpg", truncated_jpeg(w))),
                                  r"cannot read image"),
    "api image: decompression bomb": (lambda w: call(load_and_edit, w.ckpt, w.file("b.png", bomb_png(30000))),
                                      r"decompression bomb"),
    "api --set: unknown attribute": (lambda w: call(load_and_edit, w.ckpt, w.face, Smilng=1), r"unknown attribute 'Smilng'"),
    "api --set: NaN": (lambda w: call(load_and_edit, w.ckpt, w.face, Smiling=float("nan")), r"finite number"),
    "api --set: inf": (lambda w: call(load_and_edit, w.ckpt, w.face, Smiling=float("inf")), r"finite number"),
    "api --set: not a number": (lambda w: call(load_and_edit, w.ckpt, w.face, Smiling="very"), r"expected a number"),
    "api --set: empty": (lambda w: call(load_and_edit, w.ckpt, w.face, Smiling=""), r"expected a number"),
    "api recipe: unknown key": (lambda w: call(load_recipe, w.recipe(trainng={})), r"trainng: unknown key"),
    "api recipe: YAML syntax error": (lambda w: call(load_recipe, w.recipe("train: {steps: 3\n")), r"line \d+"),
    "api recipe: wrong type": (lambda w: call(load_recipe, w.recipe(train__schedule__steps=[1])), r"train\.schedule\.steps"),
    "api recipe: a dropout of 1": (lambda w: call(load_recipe, w.recipe(model__discriminator={
        "name": "latent", "params": {"dropout": 1}})), r"model\.discriminator\.params\.dropout: expected float in \[0, 1\), got 1"),
    "api dataset: a misspelled param": (lambda w: call(_celeba, w.data, unreadble="skip"),
                                        r"dataset 'celeba': params\.unreadble: unknown key"),
    "api data: short attribute line": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt",
                                                             lambda ls: ls[:3] + [ls[3].split()[0]] + ls[4:]),
                                                  call(_celeba, w.data))[1], r"line 4: expected a file name"),
    "api data: duplicate ids": (lambda w: (edit_lines(w.data / "list_attr_celeba.txt",
                                                      lambda ls: ls[:3] + [ls[2]] + ls[4:]), call(_celeba, w.data))[1],
                                r"listed twice"),
    "api data: landmark file with a word for a coordinate": (
        lambda w: (edit_lines(w.data / "list_landmarks_align_celeba.txt", lambda ls: ls[:4] + [ls[4].replace(" ", " x ", 1)]
                              + ls[5:]), call(lambda: _celeba(w.data).landmark_template()))[1],
        r"list_landmarks_align_celeba\.txt line 5: expected a file name and 10 coordinates, found 11"),
    "api data: unreadable image": (lambda w: ((w.data / "img_align_celeba" / "000002.jpg").write_bytes(b"\0" * 99),
                                              call(lambda: _celeba(w.data).split("train")))[1],
                                   r"cannot read image .*000002\.jpg"),
    "api image: a float array": (lambda w: call(load_and_edit, w.ckpt, np.zeros((8, 8, 3), np.float32)),
                                 r"expected a uint8 array"),
    "api image: not an image at all": (lambda w: call(load_and_edit, w.ckpt, 123), r"expected an image path"),
    "api --set: too big for a float": (lambda w: call(load_and_edit, w.ckpt, w.face, Smiling=10**400),
                                       r"expected a number"),
    "api faces: none in the photo": (lambda w: call(load_and_edit, w.ckpt, _rgb(300, 400), Smiling=1),
                                     r"no face found.*align=False"),
    "api faces: two, none chosen": (lambda w: call(load_and_edit, w.ckpt, placed_faces(w, 2), Smiling=1),
                                    r"choose one with --face N \(face=N"),
    "api faces: face=5": (lambda w: call(load_and_edit, w.ckpt, placed_faces(w), face=5), r"has 1 face\(s\)"),
    "api checkpoint: truncated": (lambda w: call(faderkit.load, w.file("t.safetensors", w.ckpt.read_bytes()[:-10])),
                                  r"damaged or truncated"),
    "api checkpoint: bit flipped": (lambda w: call(faderkit.load, flipped(w.ckpt, w.root / "f.safetensors",
                                                                          lambda raw: len(raw) - 5)), r"is damaged"),
    "api checkpoint: pickle that would run code": (lambda w: call(faderkit.load, w.file("p.safetensors",
                                                                                         pickle_bomb(w.root / "pwned"))),
                                                   r"pickle"),
    "api checkpoint: another architecture": (lambda w: call(faderkit.load, rewritten(w.ckpt, w.root / "a.safetensors",
                                                                                     other_architecture)),
                                             r"do not fit the architecture"),
}


def _celeba(root: Path, **params):
    from faderkit.plugins import registries

    return registries().datasets.create("celeba", root, image_size=32, params=params)


# ---------------------------------------------------------------- odd but usable images

OK_IMAGES: dict[str, Callable[[], bytes]] = {
    "16-bit greyscale PNG": lambda: _saved(Image.fromarray(np.arange(0, 65536, 16, dtype=np.uint16).reshape(64, 64)), "PNG"),
    "16-bit RGB PNG": rgb48_png,
    "greyscale": lambda: _saved(Image.fromarray(_rgb()).convert("L"), "PNG"),
    "palette": lambda: _saved(Image.fromarray(_rgb()).convert("P"), "PNG"),
    "palette with transparency": lambda: _saved(Image.fromarray(_rgb()).convert("P"), "PNG", transparency=0),
    "RGBA": lambda: _saved(Image.fromarray(np.dstack([_rgb(), np.full((80, 60), 128, np.uint8)]), "RGBA"), "PNG"),
    "greyscale with alpha": lambda: _saved(Image.fromarray(_rgb()).convert("LA"), "PNG"),
    "CMYK JPEG": lambda: _saved(Image.fromarray(_rgb()).convert("CMYK"), "JPEG"),
    "EXIF-rotated JPEG": exif_rotated_jpeg,
    "extreme aspect 1000x3": lambda: _saved(Image.fromarray(_rgb(3, 1000)), "PNG"),
    "extreme aspect 3x1000": lambda: _saved(Image.fromarray(_rgb(1000, 3)), "PNG"),
    "1x1": lambda: _saved(Image.fromarray(_rgb(1, 1)), "PNG"),
    "animated GIF": lambda: _saved(Image.fromarray(_rgb()), "GIF", save_all=True,
                                   append_images=[Image.fromarray(_rgb(seed=1))]),
    "TIFF": lambda: _saved(Image.fromarray(_rgb()), "TIFF"),
    "WebP": lambda: _saved(Image.fromarray(_rgb()), "WEBP", lossless=True),
}


# ---------------------------------------------------------------- the checks

@pytest.fixture(scope="module")
def flowers_root(tmp_path_factory):
    return generated(tmp_path_factory, "toyflowers", 30)


@pytest.fixture
def ws(tmp_path, trained_run, toy_root, flowers_root) -> Workspace:
    return Workspace(tmp_path, trained_run, toy_root, flowers_root)


def assert_nothing_written_was_altered(before: dict, after: dict) -> None:
    changed = sorted(k for k in before if after.get(k) != before[k])
    added = sorted(k for k in after if k not in before and ".faderkit-cache" not in k)
    assert changed == [] and added == [], f"altered or removed: {changed}; added: {added}"


def invoke(args: list):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_the_corpus_is_at_least_40_cases():
    assert len(CLI_CASES) + len(API_CASES) + len(OK_IMAGES) >= 40


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_cli_refuses_in_one_line_and_alters_nothing(ws, case):
    make, expected = CLI_CASES[case]
    args = make(ws)
    ws.out, ws.run  # the earlier results are always there
    before = ws.snapshot()
    result = invoke(args)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert result.stdout == ""
    assert_nothing_written_was_altered(before, ws.snapshot())
    assert not (ws.root / "pwned").exists()


@pytest.mark.parametrize("case", list(API_CASES))
def test_api_raises_one_line_faderkit_error_and_alters_nothing(ws, case):
    make, expected = API_CASES[case]
    call = make(ws)
    ws.out, ws.run
    before = ws.snapshot()
    with pytest.raises(FaderkitError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and re.search(expected, message), message
    assert_nothing_written_was_altered(before, ws.snapshot())
    assert not (ws.root / "pwned").exists()


@pytest.mark.parametrize("case", list(OK_IMAGES))
def test_odd_images_are_edited_deterministically(ws, case):
    src = ws.file("odd" + {"TIFF": ".tif", "WebP": ".webp", "animated GIF": ".gif"}.get(case, ".png"),
                  OK_IMAGES[case]())
    ws.run
    before = ws.snapshot()
    outs = [ws.root / "a.png", ws.root / "b.png"]
    for out in outs:
        result = invoke(ws.edit(src, "--set", "Smiling=1", "--no-align", out=out))  # not faces: the loader's crop
        assert result.exit_code == 0 and result.exception is None, result.output
    assert outs[0].read_bytes() == outs[1].read_bytes()
    from faderkit.imageio import open_image

    with Image.open(outs[0]) as im:  # residual mode: the input's own size, as displayed
        assert im.size == open_image(src).size and im.mode == "RGB"
    after = ws.snapshot()
    assert_nothing_written_was_altered(before, {k: v for k, v in after.items() if k not in ("a.png", "b.png")})


def test_exif_rotation_is_applied(ws):
    """An EXIF-rotated photo is edited as it is displayed, i.e. like the same pixels stored upright."""
    rotated = ws.file("rotated.jpg", exif_rotated_jpeg())
    with Image.open(rotated) as im:
        assert im.size == (60, 80)
        upright = Image.fromarray(np.asarray(im.transpose(Image.Transpose.ROTATE_270)))  # what orientation 6 shows
    model = faderkit.load(ws.ckpt)
    assert np.array_equal(np.asarray(model.edit(rotated, Smiling=1, align=False)),
                          np.asarray(model.edit(upright, Smiling=1, align=False)))


def test_16_bit_is_scaled_by_its_full_range(ws):
    from faderkit.imageio import open_image

    grey16 = np.full((8, 8), 65535 // 2, dtype=np.uint16)
    path = ws.file("half.png", _saved(Image.fromarray(grey16), "PNG"))
    assert np.asarray(open_image(path)).max() == 127  # mid-grey stays mid-grey, not stretched to white


def test_a_transparent_image_is_composited_on_white(ws):
    from faderkit.imageio import open_image

    clear = np.zeros((4, 4, 4), dtype=np.uint8)
    path = ws.file("clear.png", _saved(Image.fromarray(clear, "RGBA"), "PNG"))
    assert (np.asarray(open_image(path)) == 255).all()


def test_unreadable_image_skipped_and_counted_when_the_recipe_says_so(ws):
    bad = ws.data / "img_align_celeba" / "000013.jpg"  # a training image
    bad.write_text("this is not a face")
    ws.recipe(data__params={"unreadable": "skip"})
    result = invoke(ws.train())
    assert result.exit_code == 0, result.output
    assert "celeba: left out 1 unreadable image(s) of 60, e.g. 000013.jpg" in result.stderr
    records = [json.loads(l) for l in (ws.root / "new_run" / "metrics.jsonl").read_text().splitlines()]
    assert {"step": 0, "data_skipped": {"unreadable": 1}} in records
    assert ckpt.read_meta(ws.root / "new_run" / "last.safetensors")["step"] == 12


def test_an_unexpected_error_is_still_one_line(ws, monkeypatch):
    import faderkit.editor

    def broken(*a, **k):
        raise RuntimeError("shape mismatch\nsecond line of detail")

    monkeypatch.setattr(faderkit.editor.Editor, "load", broken)
    result = invoke(ws.edit(None, "--set", "Smiling=1"))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.strip().splitlines() == [
        "Error: unexpected RuntimeError: shape mismatch second line of detail (a faderkit bug unless the message "
        "says otherwise; FADERKIT_DEBUG=1 shows the traceback)"]
    monkeypatch.setenv("FADERKIT_DEBUG", "1")
    result = invoke(ws.edit(None, "--set", "Smiling=1"))
    assert isinstance(result.exception, RuntimeError)


def test_the_real_command_prints_no_traceback(ws):
    """The corpus above runs in-process; here three cases go through the installed console script."""
    import subprocess
    import sys

    cases = [ws.edit(ws.file("empty.jpg", b"")),
             (ws.recipe("data: {name: celeba\n"), ws.train())[1],
             ws.edit(None, ckpt=ws.file("evil.safetensors", pickle_bomb(ws.root / "pwned")))]
    for args in cases:
        proc = subprocess.run([sys.executable, "-m", "faderkit.cli", *map(str, args)], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stdout == "", proc
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("Error: "), proc.stderr
    assert not (ws.root / "pwned").exists()


def test_images_given_as_pil_or_arrays_are_prepared_like_files(ws):
    model = faderkit.load(ws.ckpt)
    grey16 = Image.fromarray(np.full((40, 30), 65535 // 2, dtype=np.uint16))
    path = ws.file("grey16.png", _saved(grey16, "PNG"))
    rgba = np.dstack([_rgb(), np.full((80, 60), 0, np.uint8)])  # fully transparent: white
    for in_memory, on_disk in ((grey16, path), (rgba, ws.file("rgba.png", _saved(Image.fromarray(rgba, "RGBA"), "PNG")))):
        assert torch.equal(model.prepare(in_memory, align=False), model.prepare(on_disk, align=False))
    assert model.prepare(grey16, align=False).max() == 127


def test_curves_draw_names_with_dollar_signs_as_written(ws):
    run = Path(shutil.copytree(ws.run, ws.root / "run $x^2$"))
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 13, "valid_mse": 0.1, "valid_swap": {"$\\frac$": 0.5}}) + "\n")
    result = invoke(["curves", str(run)])
    assert result.exit_code == 0, result.output
    with Image.open(run / "curves.png") as im:
        assert im.format == "PNG"
