"""Heavy work on a node that runs trials, not in the driver.

Joined to a cluster (``--address``), the driver may sit on a head node with no CPU or GPU for training
(``cluster.yaml``): timing the models there measures the wrong machine, and the final model would train on the
head's CPU while the GPU workers idle. ``on_trial_node`` runs such work as one Ray task with a trial's CPUs and a
whole GPU where trials use GPUs, so Ray places it on a node that trials run on; without a cluster it is a plain call
in this process. The task's ``echo`` lines are printed by the driver when it returns (a task's own output stays in
the worker's log).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import ray
from ray.exceptions import RayTaskError

Result = TypeVar("Result")


def _with_lines(function: Callable[..., Result], *args, **kwargs) -> tuple[Result, list[str]]:
    lines: list[str] = []
    return function(*args, echo=lines.append, **kwargs), lines


def on_trial_node(function: Callable[..., Result], *args, resources: dict | None, echo=print, **kwargs) -> Result:
    """``function(*args, echo=..., **kwargs)`` as a Ray task with ``resources`` (a trial's ``{"cpu", "gpu"}``),
    or here when ``resources`` is None. An error raised in the task is raised here as itself (a one-line
    ``UserError`` stays one line); an interrupted driver cancels the task."""
    if resources is None:
        return function(*args, echo=echo, **kwargs)
    task = ray.remote(num_cpus=resources["cpu"], num_gpus=math.ceil(resources["gpu"]), max_retries=0)(_with_lines)
    pending = task.remote(function, *args, **kwargs)
    try:
        result, lines = ray.get(pending)
    except RayTaskError as error:
        raise error.cause from None
    except BaseException:
        ray.cancel(pending, force=True)
        raise
    for line in lines:
        echo(line)
    return result
