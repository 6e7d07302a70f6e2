"""Training for a time budget (``train.schedule.time_budget``): how many steps this machine does in that many seconds.

The step time is measured on the run's own networks and data before the run starts, then every weight, buffer,
optimizer state and random state is put back as it was: the run that follows is exactly the one
``train.schedule.steps`` = the chosen count gives (the count is logged and stored in the run's recipe, so a resume or a
re-run can pin it). The run's evaluations, sample grids and checkpoints are timed too (once each, written to a
scratch folder) and spread over the steps at the recipe's intervals, so a recipe that evaluates less often gets
the steps it saves. Counts are rounded down to whole multiples of :data:`ROUND`, so runs of the same recipe on
the same machine usually agree.
"""

from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path

import torch

from ..errors import FaderkitError
from .samples import save_grid
from .validation import validate

#: Step counts are multiples of this.
ROUND = 250
#: Iterations timed (after WARM untimed ones, which build the kernels).
TIMED, WARM = 32, 4
#: Logging and the progress bar on top of the iterations (evaluations, samples and checkpoints are timed apart).
OVERHEAD = 1.02


def calibrate(trainer, seconds: float) -> tuple[int, float, dict[str, float]]:
    """(steps, seconds per step, its parts) for ``trainer``'s run to take about ``seconds`` of training. The parts:
    ``iteration`` (the median training iteration, with logging), ``events`` (the evaluations, sample grids and
    checkpoints at the recipe's intervals, per step) and each of those events' seconds."""
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
        events = event_seconds(trainer)
    finally:
        trainer.step = step
        model.load_state_dict(saved[0])
        objective.load({**saved[1], **saved[2]}, trainer.device)
        for (_, opt), state in zip(trainer._optimizers(), saved[3]):
            opt.load_state_dict(state)
        torch.set_rng_state(saved[4])
        model.train(was_training)
    iteration = sorted(times[WARM:])[TIMED // 2] * OVERHEAD  # the median: one slow iteration is not the machine
    logs = trainer.recipe.train.logging
    spread = ((events["evaluation"] + events["best checkpoint"]) / logs.eval_every
              + events["samples"] / logs.sample_every + events["checkpoint"] / logs.checkpoint_every)
    per_step = iteration + spread
    return (max(ROUND, int(seconds / per_step) // ROUND * ROUND), per_step,
            {"iteration": iteration, "events": spread, **{f"{k} s": round(v, 4) for k, v in events.items()}})


def event_seconds(trainer) -> dict[str, float]:
    """Seconds of one validation pass, one best-weights checkpoint (every evaluation may write one), one sample
    grid and one full checkpoint, as the training loop does them; the files go to a scratch folder. Each is done
    twice and the second timed (the first builds the kernels of its no-gradient path)."""
    t, logs = trainer.recipe.train.schedule, trainer.recipe.train.logging
    with tempfile.TemporaryDirectory(prefix="faderkit-budget-") as tmp:
        scratch = Path(tmp)
        jobs = {
            "evaluation": lambda: validate(trainer.model, trainer.classifier, trainer.valid_split, t.batch_size,
                                           logs.eval_batches, trainer.device),
            "best checkpoint": lambda: trainer._save(scratch / "best.safetensors", with_optim=False),
            "samples": lambda: save_grid(trainer.model, trainer.sample_x, trainer.sample_y, scratch / "grid.png"),
            "checkpoint": lambda: trainer._save(scratch / "last.safetensors", with_optim=True),
        }
        out = {}
        for name, job in jobs.items():
            job()
            t0 = time.perf_counter()
            job()
            out[name] = time.perf_counter() - t0
        return out
