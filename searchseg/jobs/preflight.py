"""Preflight: the seed notebooks' "finding hyperparameters" steps, automated, before any cluster time.

For a space's representative configuration: is the initial loss close to ln(number of classes)
(a sane initialisation)? Can the model over-fit one batch in a bounded number of steps (a
working pipeline)? How long does a batch take and how much memory at the working size? From
that, how many trial-epochs and hours will the search cost? And does validation hold enough independent groups
for a planned run to search at all?
"""

from __future__ import annotations

import math
import resource
import time
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from searchseg.data.loader import SegmentationData
from searchseg.spaces.space import SearchSpace, merged_config
from searchseg.training.engine import Trainer


@dataclass(frozen=True)
class PreflightResult:
    config: dict  # the representative configuration's searched keys, with arch and encoder
    device: str
    initial_loss: float
    expected_initial_loss: float  # ln(classes)
    initial_loss_ok: bool
    overfit_steps: int
    overfit_first_loss: float
    overfit_last_loss: float
    overfit_ok: bool
    seconds_per_batch: float
    batch_size: int
    peak_memory_bytes: int
    peak_memory_kind: str  # "GPU allocated" or "process RSS"
    seconds_per_epoch: float
    expected_trial_epochs: float  # with ASHA's stops
    max_trial_epochs: int
    estimated_search_seconds: float
    concurrency_assumed: int
    val_images: int
    val_groups: int  # independent groups of validation images: a planned run searches from MIN_INDEPENDENT_GROUPS


def _initial_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> float:
    if logits.shape[1] == 1:
        keep = target != ignore_index
        return F.binary_cross_entropy_with_logits(logits[:, 0][keep], target[keep].float()).item()
    return F.cross_entropy(logits, target, ignore_index=ignore_index).item()


def run_preflight(space: SearchSpace, fixed: dict, data: SegmentationData, steps: int = 30) -> PreflightResult:
    """Measure the representative model of ``space`` on one training batch."""
    central = space.central_values()
    config = merged_config(fixed, {**central, "augment": "none"})
    trainer = Trainer(config, data)
    images, masks = next(iter(trainer.train_loader))
    images, masks = trainer.prepare_batch(images, masks)
    classes = 2 if data.binary else data.num_classes
    with torch.no_grad():
        trainer.model.eval()
        initial = _initial_cross_entropy(trainer.model(images).float(), masks, data.ignore_index)
    expected = math.log(classes)
    trainer.model.train()
    if trainer.cuda:
        torch.cuda.reset_peak_memory_stats()
    losses, seconds = [], []
    optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=max(config.lr, 1e-3))
    for _ in range(steps):
        started = time.perf_counter()
        with trainer.autocast():
            logits = trainer.model(images)
        loss = trainer.loss_fn(logits, masks)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if trainer.cuda:
            torch.cuda.synchronize()
        seconds.append(time.perf_counter() - started)
        losses.append(loss.item())
    per_batch = sorted(seconds[2:])[len(seconds[2:]) // 2] if len(seconds) > 3 else seconds[-1]
    if trainer.cuda:
        peak_bytes = torch.cuda.max_memory_allocated()
    else:
        peak_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # the process's peak RSS
    val_batches = math.ceil(len(data.splits["val"]) / config.batch_size)
    epoch_seconds = per_batch * trainer.steps_per_epoch + per_batch / 3 * val_batches  # forward only ~ 1/3
    settings = space.settings
    trial_epochs = settings.expected_trial_epochs()
    concurrency = settings.concurrency or 1
    return PreflightResult(
        config={k: v for k, v in config.to_flat().items() if k in central or k in ("arch", "encoder")},
        device=str(trainer.device),
        initial_loss=initial,
        expected_initial_loss=expected,
        initial_loss_ok=abs(initial - expected) <= 0.5 * expected,
        overfit_steps=steps,
        overfit_first_loss=losses[0],
        overfit_last_loss=losses[-1],
        overfit_ok=losses[-1] < 0.5 * losses[0],
        seconds_per_batch=per_batch,
        batch_size=config.batch_size,
        peak_memory_bytes=int(peak_bytes),
        peak_memory_kind="GPU allocated" if trainer.cuda else "process RSS",
        seconds_per_epoch=epoch_seconds,
        expected_trial_epochs=trial_epochs,
        max_trial_epochs=settings.samples * settings.epochs,
        estimated_search_seconds=trial_epochs * epoch_seconds / concurrency,
        concurrency_assumed=concurrency,
        val_images=len(data.splits["val"]),
        val_groups=data.independent_group_count("val"),
    )
