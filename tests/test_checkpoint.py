import os
import pickle

import pytest
import torch
from safetensors.torch import save_file

from faderkit import FaderkitError
from faderkit import checkpoint as ckpt


def test_round_trip_with_metadata_and_optimizer(tmp_path):
    net = torch.nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters())
    net(torch.randn(4, 3)).sum().backward()
    opt.step()
    t, rest = ckpt.flatten_optimizer("opt", opt.state_dict())
    path = tmp_path / "a.safetensors"
    ckpt.save(path, {**ckpt.prefixed("m", net.state_dict()), **t}, {"kind": "x", "step": 3, "opt": rest})
    tensors, meta = ckpt.load(path)
    assert meta["step"] == 3 and meta["format"] == ckpt.FORMAT and "torch" in meta["versions"]
    assert torch.equal(ckpt.unprefixed("m", tensors)["weight"], net.weight)
    state = ckpt.unflatten_optimizer("opt", tensors, meta["opt"])
    opt2 = torch.optim.Adam(torch.nn.Linear(3, 2).parameters())
    opt2.load_state_dict(state)
    assert torch.equal(opt2.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


def test_failed_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "last.safetensors"
    ckpt.save(path, {"w": torch.ones(3)}, {"step": 1})

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(FaderkitError, match="No space left.*previous one is intact"):
        ckpt.save(path, {"w": torch.zeros(3)}, {"step": 2})
    monkeypatch.undo()
    tensors, meta = ckpt.load(path)
    assert meta["step"] == 1 and tensors["w"].tolist() == [1, 1, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["last.safetensors"]


def test_truncated_checkpoint(tmp_path):
    path = tmp_path / "c.safetensors"
    ckpt.save(path, {"w": torch.ones(1000)}, {"step": 1})
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(FaderkitError, match="not a readable faderkit checkpoint"):
        ckpt.load(path)


def test_pickle_is_refused_without_being_run(tmp_path):
    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path}/pwned",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(FaderkitError, match="pickle"):
        ckpt.load(path)
    assert not (tmp_path / "pwned").exists()


def test_torch_save_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(FaderkitError, match="not a readable faderkit checkpoint"):
        ckpt.load(path)


def test_plain_safetensors_is_not_a_faderkit_checkpoint(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.ones(2)}, str(path))
    with pytest.raises(FaderkitError, match="not a faderkit checkpoint"):
        ckpt.load(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FaderkitError, match="checkpoint not found"):
        ckpt.load(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("where", ["tensor data", "metadata"])
def test_a_flipped_bit_is_refused(tmp_path, where):
    path = tmp_path / "c.safetensors"
    ckpt.save(path, {"w": torch.linspace(0, 1, 1000)}, {"step": 12345})
    raw = bytearray(path.read_bytes())
    at = len(raw) - 1500 if where == "tensor data" else raw.index(b"12345") + 2  # a digit of the step
    raw[at] ^= 0x04
    path.write_bytes(bytes(raw))
    with pytest.raises(FaderkitError, match="damaged: its contents do not match the checksum"):
        ckpt.load(path)


def test_checksum_covers_names_shapes_and_metadata():
    t = {"a": torch.arange(6.0)}
    base = ckpt.checksum(t, {"step": 1})
    assert base == ckpt.checksum({"a": torch.arange(6.0)}, {"step": 1, "checksum": "ignored"})
    assert base != ckpt.checksum({"b": torch.arange(6.0)}, {"step": 1})
    assert base != ckpt.checksum({"a": torch.arange(6.0).reshape(2, 3)}, {"step": 1})
    assert base != ckpt.checksum(t, {"step": 2})
