"""Built-in plugin: the sweep executors ``local`` (processes on this machine) and ``ray`` (a Ray cluster)."""

from faderkit import Entry, hookimpl


@hookimpl
def faderkit_executors():
    from faderkit.sweep.executors import LocalExecutor, LocalParams, RayExecutor, RayParams

    return [Entry("local", LocalExecutor, "Runs a sweep's runs on this machine, --jobs at a time, the cores split "
                  "between them", params=LocalParams),
            Entry("ray", RayExecutor, "Runs each run as a Ray task (needs the ray extra and a shared filesystem "
                  "on a cluster)", params=RayParams)]
