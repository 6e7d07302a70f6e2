"""The optimisers of a training run, and the one way each of them takes a step."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable, Iterator

import torch

from ..train_sections import ScheduleSection


def adam(params, schedule: ScheduleSection, impl: str, device, lr: float | None = None) -> torch.optim.Adam:
    """Adam at ``schedule``'s lr (or ``lr``) and beta1, with the kernel ``impl`` (train.speed.optimizer_impl)."""
    # auto: the fused kernel (one pass over every parameter, CPU and CUDA since torch 2.4): the same Adam update,
    # and on 2 CPU cores it saves most of the optimizer's time (many small ops, each a wait on a busy machine)
    fused = {"fused": True} if torch.device(device).type in ("cpu", "cuda") else {}
    kernel = {"auto": fused, "foreach": {"foreach": True}, "fused": {"fused": True}, "single": {"foreach": False},
              "torch": {}}[impl]
    return torch.optim.Adam(params, lr=lr or schedule.lr, betas=(schedule.beta1, 0.999), **kernel)


def update(opt: torch.optim.Optimizer, loss: torch.Tensor, params: Iterable[torch.Tensor], clip: float) -> None:
    """One step of ``opt`` on ``loss``: gradients cleared, computed, their norm over ``params`` clipped
    to ``clip`` (0: not clipped), applied. In fp16 through the optimizer's ``grad_scaler`` (see
    :func:`with_scaler`): the loss scaled up, the gradients unscaled before clipping, a step with an
    inf or nan gradient skipped and the scale lowered."""
    scaler = getattr(opt, "grad_scaler", None)
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return
    scaler.scale(loss).backward()
    if clip:
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, clip)
    scaler.step(opt)
    scaler.update()


def with_scaler(opt: torch.optim.Optimizer, scaler) -> torch.optim.Optimizer:
    """``opt``, its updates going through ``scaler`` (fp16's GradScaler; None: plain updates)."""
    opt.grad_scaler = scaler
    return opt


@contextmanager
def frozen(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """``module`` with its parameters out of autograd for the block: a loss through it reaches only its
    input (the encoder's adversarial term, the decoder's fooling term)."""
    module.requires_grad_(False)
    try:
        yield module
    finally:
        module.requires_grad_(True)
