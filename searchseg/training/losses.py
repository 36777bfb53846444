"""Losses by name, in binary (one logit channel) and multi-class modes, all honouring the ignore index,
and the weighted mix of them that a config's ``loss.<name>`` weights describe.

Taken from torch and ``smp.losses``: ``ce`` (cross-entropy, BCE in binary mode), ``weighted_ce``
(class weights from training pixel frequencies, median-frequency balanced), ``dice``, ``focal``,
``tversky``, ``lovasz``, ``jaccard``. More are added with ``@register_loss("name")`` on a function that
takes the ``LossContext`` and returns the loss module (see ``searchseg.training.plugins``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from segmentation_models_pytorch import losses as smp_losses
from torch import nn

from searchseg.training.registry import Registry


@dataclass(frozen=True)
class LossContext:
    """What a loss needs to know about the task."""

    binary: bool
    num_classes: int
    ignore_index: int
    class_weights: tuple[float, ...]
    focal_gamma: float = 2.0
    tversky_alpha: float = 0.5
    tversky_beta: float = 0.5

    @property
    def mode(self) -> str:
        return smp_losses.BINARY_MODE if self.binary else smp_losses.MULTICLASS_MODE


class BinaryCrossEntropy(nn.Module):
    """BCE on one logit channel against 0/1 targets of shape ``(B, H, W)``, skipping ignored pixels."""

    def __init__(self, ignore_index: int, pos_weight: float | None = None) -> None:
        super().__init__()
        self.ignore_index = ignore_index
        self.pos_weight: torch.Tensor | None
        self.register_buffer("pos_weight", torch.tensor(pos_weight) if pos_weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        keep = target != self.ignore_index
        return nn.functional.binary_cross_entropy_with_logits(
            logits[:, 0][keep], target[keep].to(logits.dtype), pos_weight=self.pos_weight
        )


LOSSES: Registry[Callable[[LossContext], nn.Module]] = Registry("loss")
register_loss = LOSSES.register


@register_loss("ce")
def _ce(ctx: LossContext) -> nn.Module:
    return BinaryCrossEntropy(ctx.ignore_index) if ctx.binary else nn.CrossEntropyLoss(ignore_index=ctx.ignore_index)


@register_loss("weighted_ce")
def _weighted_ce(ctx: LossContext) -> nn.Module:
    if ctx.binary:
        return BinaryCrossEntropy(ctx.ignore_index, pos_weight=ctx.class_weights[1] / ctx.class_weights[0])
    return nn.CrossEntropyLoss(weight=torch.tensor(ctx.class_weights, dtype=torch.float32),
                               ignore_index=ctx.ignore_index)


register_loss("dice")(lambda ctx: smp_losses.DiceLoss(ctx.mode, ignore_index=ctx.ignore_index))
register_loss("focal")(lambda ctx: smp_losses.FocalLoss(ctx.mode, gamma=ctx.focal_gamma, ignore_index=ctx.ignore_index))
register_loss("tversky")(lambda ctx: smp_losses.TverskyLoss(ctx.mode, alpha=ctx.tversky_alpha, beta=ctx.tversky_beta,
                                                            ignore_index=ctx.ignore_index))
register_loss("lovasz")(lambda ctx: smp_losses.LovaszLoss(ctx.mode, ignore_index=ctx.ignore_index))
register_loss("jaccard")(lambda ctx: smp_losses.JaccardLoss(ctx.mode, ignore_index=ctx.ignore_index))


def check_loss_names(names) -> None:
    for name in names:
        LOSSES.check(name)


class LossMix(nn.Module):
    """``sum_i w_i * loss_i(logits, target)`` over the losses with a positive weight.

    Shape: logits ``(B, C, H, W)`` (C = 1 in binary mode), target ``(B, H, W)`` long with ``ignore_index``.
    """

    def __init__(self, weights: dict[str, float], ctx: LossContext,
                 options: dict[str, dict] | None = None) -> None:
        super().__init__()
        check_loss_names(weights)
        active = {name: w for name, w in weights.items() if w > 0}
        self.weights = dict(sorted(active.items()))
        self.losses = nn.ModuleDict({name: LOSSES.build(name, ctx, options=(options or {}).get(name))
                                     for name in self.weights})

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # losses in fp32 even under bf16 autocast: softmax sums lose precision
        total = logits.new_zeros(())
        for name, weight in self.weights.items():
            total = total + weight * self.losses[name](logits, target)
        return total
