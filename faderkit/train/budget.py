"""Training for a time budget (``train.schedule.time_budget``): how many steps this machine does in that many seconds.

The step time is measured on the run's own networks and data before the run starts, then every weight, buffer,
optimizer state and random state is put back as it was: the run that follows is exactly the one
``train.schedule.steps`` = the chosen count gives (the count is logged and stored in the run's recipe, so a resume or a
re-run can pin it). Counts are rounded down to whole multiples of :data:`ROUND`, so runs of the same recipe on
the same machine usually agree.
"""

from __future__ import annotations

import copy
import time

import torch

from ..errors import FaderkitError

#: Step counts are multiples of this.
ROUND = 250
#: Iterations timed (after WARM untimed ones, which build the kernels).
TIMED, WARM = 16, 4
#: Evaluations, samples and checkpoints on top of the iterations: measured at 3 to 5% on the quickstart.
OVERHEAD = 1.05


def calibrate(trainer, seconds: float) -> tuple[int, float]:
    """(steps, seconds per step) for ``trainer``'s run to take about ``seconds`` of training."""
    if trainer.dist.world > 1:
        raise FaderkitError("train.schedule.time_budget is for single-process runs; under torchrun set train.schedule.steps")
    model, objective = trainer.model, trainer.objective
    saved = (copy.deepcopy(model.state_dict()), copy.deepcopy(objective.networks()),
             copy.deepcopy(objective.train_state()),
             [copy.deepcopy(opt.state_dict()) for _, opt in trainer._optimizers()], torch.get_rng_state())
    step, was_training = trainer.step, model.training
    gen = torch.Generator()
    model.train()
    try:
        trainer.step = 10**9  # past every warm-up: the adversary's term is computed, as in most of the run
        times = []
        for i in range(WARM + TIMED):
            gen.manual_seed(i)
            t0 = time.perf_counter()
            trainer._iteration(gen)
            times.append(time.perf_counter() - t0)
    finally:
        trainer.step = step
        model.load_state_dict(saved[0])
        objective.load({**saved[1], **saved[2]}, trainer.device)
        for (_, opt), state in zip(trainer._optimizers(), saved[3]):
            opt.load_state_dict(state)
        torch.set_rng_state(saved[4])
        model.train(was_training)
    per_step = sorted(times[WARM:])[TIMED // 2] * OVERHEAD  # the median: one slow iteration is not the machine
    return max(ROUND, int(seconds / per_step) // ROUND * ROUND), per_step
