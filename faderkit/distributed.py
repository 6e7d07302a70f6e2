"""Data-parallel training under torchrun: gloo on CPU, NCCL on GPU, rank 0 the only writer.

``FADERKIT_DDP=1`` wraps a one-process run in DDP too (a smoke test of the path on one GPU).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from .errors import FaderkitError


#: how long the other processes wait for rank 0's classifier, in seconds (FADERKIT_WAIT_FOR_MAIN_S overrides)
WAIT_FOR_MAIN_S = 48 * 3600


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    forced: bool = False  # FADERKIT_DDP=1: the DDP path with a single process

    @property
    def enabled(self) -> bool:
        return self.world > 1 or self.forced

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Dist":
        """Join the process group torchrun describes in the environment (a no-op without torchrun)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        forced = os.environ.get("FADERKIT_DDP") == "1"
        if world <= 1 and not forced:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), forced)

    def device(self, device: torch.device) -> torch.device:
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, sync_bn: bool = False) -> nn.Module:
        """``module`` under DDP; ``sync_bn``: its BatchNorm layers first made SyncBatchNorm, in place (same
        parameters and state_dict keys). One process: ``module`` itself."""
        if not self.enabled:
            return module
        if sync_bn:
            if module_device(module).type != "cuda":
                raise FaderkitError("train.speed.sync_bn needs CUDA devices (torch's SyncBatchNorm); turn it off on the CPU")
            module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
        ids = [module_device(module).index] if module_device(module).type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def wait_for_main(self, timeout_s: float | None = None) -> None:
        """A barrier while rank 0 works alone for long (the classifier: 20,000 steps in the CelebA recipes),
        on a gloo group of its own with a long timeout, so the main group's (NCCL: 10 minutes) still
        guards every training step. torchrun stops the others if rank 0 dies."""
        if not self.enabled:
            return
        if timeout_s is None:
            raw = os.environ.get("FADERKIT_WAIT_FOR_MAIN_S", "")
            try:
                timeout_s = float(raw) if raw else WAIT_FOR_MAIN_S
            except ValueError:
                raise FaderkitError(f"FADERKIT_WAIT_FOR_MAIN_S={raw!r} is not a number of seconds") from None
        group = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout_s))
        dist.barrier(group=group)
        dist.destroy_process_group(group)

    def all_ok(self, ok: bool, device: torch.device) -> bool:
        """True only if every process says ok (so one failing rank stops them all, none hangs)."""
        if not self.enabled:
            return ok
        flag = torch.tensor([1.0 if ok else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def check(self, ok: bool, device: torch.device, message: str) -> None:
        if not self.all_ok(ok, device) and ok:
            raise FaderkitError(message)

    def close(self) -> None:
        if self.enabled and dist.is_initialized():
            dist.destroy_process_group()


def module_device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device
