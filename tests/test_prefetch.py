"""The background prefetch: the same batches in the same order as reading them in the loop, the same
trained weights, errors raised for the batch that needs them; and the DDP path in one process."""

import os
import socket

import numpy as np
import pytest
import torch

from faderkit import FaderkitError, checkpoint
from faderkit.data import BatchStream
from faderkit.prefetch import Prefetcher
from faderkit.recipe import validate
from faderkit.train import Trainer

from conftest import tiny_recipe


class Split:
    name = "train"

    def __init__(self, n, fail_at=None):
        self.labels = torch.arange(n)[:, None].repeat(1, 2)
        self.data = torch.arange(n, dtype=torch.uint8)[:, None, None, None].expand(n, 3, 4, 4).clone()
        self.fail_at, self.reads = fail_at, []

    def __len__(self):
        return len(self.labels)

    def images(self, idx):
        self.reads.append(idx.tolist())
        if self.fail_at is not None and self.fail_at in idx:
            raise OSError(f"image {self.fail_at} is unreadable")
        return self.data[torch.from_numpy(np.asarray(idx))]


@pytest.mark.parametrize("order", [list(range(12)), [0, 1, 2, 5, 6, 3, 4, 20, 21, 22]])
def test_prefetched_batches_are_the_streams_own(order):
    plain, pre = BatchStream(Split(10), 4, seed=3), Prefetcher(BatchStream(Split(10), 4, seed=3))
    try:
        for b in order:  # consecutive (prefetched) and jumps (a resume, another schedule): read then
            x0, y0 = plain.batch(b)
            x1, y1 = pre.batch(b)
            assert torch.equal(x0, x1) and torch.equal(y0, y1), f"batch {b} differs"
    finally:
        pre.close()
    assert pre.hits >= (len(order) - 4) and pre.misses >= 1


def test_a_read_error_is_raised_for_the_batch_that_needs_it():
    split = Split(8, fail_at=5)
    stream = BatchStream(split, 2, seed=0)
    bad = next(b for b in range(4) if 5 in stream.indices(b))
    pre = Prefetcher(stream)
    try:
        for b in range(bad):
            pre.batch(b)
        with pytest.raises(OSError, match="image 5"):
            pre.batch(bad)
    finally:
        pre.close()


def _weights(root, run, **train):
    trainer = Trainer(validate(tiny_recipe(root, steps=5, amp="off", **train)), run, device="cpu", progress=False,
                      log=lambda m: None)
    trainer.run_training()
    return checkpoint.load(run / "last.safetensors")[0]


def test_training_with_prefetch_is_bit_for_bit_the_same(toy_root, tmp_path):
    a = _weights(toy_root, tmp_path / "plain", prefetch=False)
    b = _weights(toy_root, tmp_path / "prefetch", prefetch=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs with prefetch"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_faderkit_ddp_one_process_trains_through_the_ddp_path(toy_root, tmp_path, monkeypatch):
    """FADERKIT_DDP=1: one process joins a process group (gloo here, NCCL on a GPU: gpu_check.sh), the
    networks are DDP-wrapped, the classifier wait runs on its own group."""
    monkeypatch.setenv("FADERKIT_DDP", "1")
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(k, v)
    trainer = Trainer(validate(tiny_recipe(toy_root, steps=2, amp="off")), tmp_path / "run", device="cpu",
                      progress=False, log=lambda m: None)
    assert trainer.dist.enabled and trainer.dist.world == 1
    trainer.run_training()
    assert isinstance(trainer.enc, torch.nn.parallel.DistributedDataParallel)
    assert checkpoint.read_meta(tmp_path / "run" / "last.safetensors")["step"] == 2
    assert not torch.distributed.is_initialized()  # closed


def test_sync_bn_on_the_cpu_is_refused_in_one_line(toy_root, tmp_path, monkeypatch):
    monkeypatch.setenv("FADERKIT_DDP", "1")
    for k, v in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1",
                     MASTER_PORT=str(_free_port())).items():
        monkeypatch.setenv(k, v)
    trainer = Trainer(validate(tiny_recipe(toy_root, steps=2, sync_bn=True)), tmp_path / "run", device="cpu",
                      progress=False, log=lambda m: None)
    with pytest.raises(FaderkitError, match="train.speed.sync_bn needs CUDA"):
        trainer.run_training()
    assert not torch.distributed.is_initialized()
