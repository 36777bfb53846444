"""Learning-rate schedules: ``@register_schedule("name")`` on a function of training progress (0 at the end of
warm-up, 1 at the last step) returning the multiplier of the peak learning rate.

The config's ``scheduler`` names one; a linear warm-up of ``warmup_epochs`` comes first. ``onecycle`` is torch's
``OneCycleLR`` (its own warm-up and momentum cycle, a length fixed when built) and is not a multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from searchseg.errors import unknown_name
from searchseg.training.registry import Registry

ONE_CYCLE = "onecycle"
SCHEDULES: Registry[Callable[[float], float]] = Registry("learning-rate schedule")
register_schedule = SCHEDULES.register
register_schedule("cosine")(lambda progress: 0.5 * (1.0 + math.cos(math.pi * progress)))
register_schedule("poly")(lambda progress: (1.0 - progress) ** 0.9)
register_schedule("constant")(lambda progress: 1.0)


def schedule_names() -> list[str]:
    return sorted([*SCHEDULES, ONE_CYCLE])


def check_schedule(name: str) -> None:
    if name != ONE_CYCLE and name not in SCHEDULES:
        raise unknown_name("learning-rate schedule", name, schedule_names())


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str, options: dict | None = None) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warm-up, then the schedule's decay."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min((step - warmup_steps) / max(total_steps - warmup_steps, 1), 1.0)
    return SCHEDULES.build(schedule, progress, options=options)
