"""Two CPU processes under DistributedDataParallel (gloo) train in lockstep; only rank 0 writes."""

import json
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from faderkit.recipe import validate

from conftest import tiny_recipe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, raw, run_dir, out_dir):
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    from faderkit.train import Trainer

    trainer = Trainer(validate(raw), run_dir, progress=False, log=lambda m: None)
    trainer.run_training()
    torch.save({k: v.detach().clone() for k, v in trainer.model.named_parameters()}, f"{out_dir}/rank{rank}.pt")
    json.dump({"shard": trainer.stream.indices(0).tolist()}, open(f"{out_dir}/rank{rank}.json", "w"))


def test_two_processes_keep_identical_weights(toy_root, tmp_path):
    raw = tiny_recipe(toy_root, steps=4, checkpoint_every=2)
    mp.spawn(_worker, args=(2, _free_port(), raw, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    a = torch.load(tmp_path / "rank0.pt")
    b = torch.load(tmp_path / "rank1.pt")
    assert a.keys() == b.keys()
    # BatchNorm running statistics are broadcast from rank 0 at every forward (DDP's default), and
    # rank 0 writes the checkpoints, so the weights that must agree are the parameters
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between ranks"
    # each rank saw its own half of every global batch
    s0 = json.load(open(tmp_path / "rank0.json"))["shard"]
    s1 = json.load(open(tmp_path / "rank1.json"))["shard"]
    assert len(s0) == len(s1) == 4 and not set(s0) & set(s1)
    # one writer: one metrics log with each step once, one last checkpoint at the planned step
    steps = [json.loads(l)["step"] for l in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
             if "loss_rec" in l]
    assert steps == [2, 4]
    from faderkit import checkpoint

    meta = checkpoint.read_meta(tmp_path / "run" / "last.safetensors")
    assert meta["step"] == 4
    trained = checkpoint.load(tmp_path / "run" / "last.safetensors")[0]
    assert torch.equal(trained["model.encoder.layers.0.0.weight"], a["encoder.layers.0.0.weight"])
