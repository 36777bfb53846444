"""Optimizer registry: ``@register_optimizer("name")`` on a function ``(parameters, config) -> Optimizer``."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from searchseg.spaces.config import TrialConfig
from searchseg.training.registry import Registry

OPTIMIZERS: Registry[Callable[[Iterable[torch.nn.Parameter], TrialConfig], torch.optim.Optimizer]] = \
    Registry("optimizer")
register_optimizer = OPTIMIZERS.register
register_optimizer("adamw")(lambda params, c: torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay))
register_optimizer("adam")(lambda params, c: torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay))
register_optimizer("sgd")(lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum,
                                                            weight_decay=c.weight_decay, nesterov=True))


def build_optimizer(params: Iterable[torch.nn.Parameter], config: TrialConfig) -> torch.optim.Optimizer:
    return OPTIMIZERS.build(config.optimizer, params, config, options=config.options_for("optimizer",
                                                                                       config.optimizer))
