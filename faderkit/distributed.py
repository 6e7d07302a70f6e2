"""Data-parallel training under torchrun: gloo on CPU, NCCL on GPU, rank 0 the only writer."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from .errors import FaderkitError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device) -> "Dist":
        """Join the process group torchrun describes in the environment (a no-op without torchrun)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))

    def device(self, device: torch.device) -> torch.device:
        if device.type == "cuda" and self.enabled:
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module) -> nn.Module:
        if not self.enabled:
            return module
        ids = [module_device(module).index] if module_device(module).type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

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
