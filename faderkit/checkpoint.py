"""Checkpoints: one safetensors file holding the weights and, in its header, JSON metadata.

Nothing is ever unpickled. Files are written to a temporary name, fsynced and renamed, so a
crash or a full disk never leaves a partial file under the real name. The metadata carries a
SHA-256 of itself and of every tensor, so a flipped bit anywhere is refused rather than loaded.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as st_save

from . import atomic
from .errors import FaderkitError, brief

FORMAT = "faderkit-checkpoint/1"


def versions() -> dict[str, str]:
    import numpy
    import faderkit

    return {"faderkit": faderkit.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def flatten_optimizer(prefix: str, state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON (the rest)."""
    tensors, rest = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, slots in state["state"].items():
        rest["state"][str(pid)] = {}
        for key, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                rest["state"][str(pid)][key] = value
    return tensors, rest


def unflatten_optimizer(prefix: str, tensors: dict[str, torch.Tensor], rest: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for pid, slots in rest["state"].items():
        state[int(pid)] = dict(slots)
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1:].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def checksum(tensors: dict[str, torch.Tensor], meta: dict) -> str:
    """SHA-256 of the metadata (without its checksum) and of each tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256(json.dumps({k: v for k, v in meta.items() if k != "checksum"}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save(path: str | Path, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Write tensors + metadata atomically (temp file, fsync, rename)."""
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {**meta, "format": FORMAT, "versions": versions()}
    meta["checksum"] = checksum(tensors, meta)
    data = st_save(tensors, metadata={"faderkit": json.dumps(meta)})
    atomic.write(path, data, fsync=True, what=f"checkpoint {path}")


def read_meta(path: str | Path) -> dict:
    return load(path, tensors=False)[1]


def load(path: str | Path, tensors: bool = True) -> tuple[dict[str, torch.Tensor], dict]:
    """(tensors, metadata) of a faderkit checkpoint; anything else is a one-line FaderkitError."""
    path = Path(path)
    if not path.is_file():
        raise FaderkitError(f"checkpoint not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("faderkit")
            out = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        with open(path, "rb") as fh:
            head = fh.read(9)
        # safetensors: an 8-byte header length, then the JSON header; a pickle: 0x80 and its protocol
        # (2 to 5); torch.save: a zip file. The header length's first byte may be 0x80 too.
        pickle = head[8:9] != b"{" and (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")
                                        or head[:2] == b"PK")
        kind = "a pickle (faderkit never unpickles files)" if pickle else "damaged or truncated"
        raise FaderkitError(f"{path} is not a readable faderkit checkpoint: {kind} ({brief(exc, 120)})") from None
    if raw is None:
        raise FaderkitError(f"{path} is a safetensors file but not a faderkit checkpoint (no faderkit metadata)")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError:
        raise FaderkitError(f"{path}: its faderkit metadata is corrupt") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise FaderkitError(f"{path}: unsupported checkpoint format {found!r} (expected {FORMAT})")
    if tensors and "checksum" in meta and checksum(out, meta) != meta["checksum"]:
        raise FaderkitError(f"{path} is damaged: its contents do not match the checksum written with it "
                            "(a flipped bit or a partial copy); use another checkpoint, e.g. last.safetensors")
    return out, meta


def prefixed(prefix: str, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def unprefixed(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    n = len(prefix) + 1
    return {k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
