"""Built-in plugin: the sweep executors ``local`` (processes on this machine), ``ray`` (a Ray cluster) and
``submitit`` (SLURM, through submitit; see :mod:`.submitit_executor`)."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_executors():
    from faderkit.sweep.executors import LocalExecutor, LocalParams, RayExecutor, RayParams

    from .submitit_executor import SubmititExecutor, SubmititParams

    return [Entry("local", LocalExecutor, "Runs a sweep's runs on this machine, --jobs at a time, the cores split "
                  "between them", params=LocalParams),
            Entry("ray", RayExecutor, "Runs each run as a Ray task (needs the ray extra and a shared filesystem "
                  "on a cluster)", params=RayParams),
            Entry("submitit", SubmititExecutor, "Runs each run as a SLURM job through submitit, --jobs at a time "
                  "(needs the submitit extra and a shared filesystem); cluster=local for one machine",
                  params=SubmititParams)]
