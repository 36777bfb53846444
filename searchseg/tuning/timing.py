"""Measure what a training step and a trial's checkpoint cost, per model, before a budgeted search plans around
them.

Steps are timed in this process with the thread count a trial will get (and once with all of them, for
the final training), on real batches of the decoded data, loading and augmentation included. On CUDA each step
is synchronised, so bf16 and architecture differences show in the numbers.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass

import torch

from searchseg.data.loader import SegmentationData
from searchseg.spaces.config import TrialConfig
from searchseg.training.engine import Trainer, torch_threads

CHECKPOINT_COPIES = 2


@dataclass(frozen=True)
class StepTiming:
    step: float  # seconds of the fastest timed optimizer step
    checkpoint: float  # seconds to write the trainer's state after them, as a trial does every epoch


def time_steps(config: TrialConfig, data: SegmentationData, threads: int, timed_steps: int = 2,
               time_checkpoint: bool = True) -> StepTiming:
    """One optimizer step of ``config`` on ``data`` as a trial pays it: the batch from the loader (with the
    config's augmentation), forward, loss mix, backward and update; the fastest of ``timed_steps``, since other
    work on the machine only ever makes a step slower. Then, with ``time_checkpoint`` (otherwise 0), the checkpoint
    a trial writes after each epoch (weights, optimizer moments, schedule; on a GPU, copied to the host first)."""
    with torch_threads(threads):
        trainer = Trainer(config.replace(epoch_steps=timed_steps), data)
        trainer.model.train()
        seconds = []
        batches = iter(trainer.train_loader)
        for _ in range(timed_steps):
            started = time.perf_counter()
            images, masks = next(batches)
            images, masks = trainer.prepare_batch(images, masks)
            with trainer.autocast():
                logits = trainer.model(images)
            loss = trainer.loss_fn(logits, masks)
            trainer.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            trainer.optimizer.step()
            if trainer.cuda:
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - started)
        checkpoint = 0.0
        if time_checkpoint:
            started = time.perf_counter()
            torch.save(trainer.state_dict(), io.BytesIO())
            # Tune then copies the checkpoint's folder into the trial's: its bytes are written twice
            checkpoint = CHECKPOINT_COPIES * (time.perf_counter() - started)
        del trainer
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    return StepTiming(min(seconds), checkpoint)


def step_seconds(config: TrialConfig, data: SegmentationData, threads: int, timed_steps: int = 2) -> float:
    """Seconds of one optimizer step (``time_steps``), its checkpoint not written: each model of a space is timed
    this way, and only the first start configuration's checkpoint is planned with."""
    return time_steps(config, data, threads, timed_steps, time_checkpoint=False).step


def model_step_seconds(base: TrialConfig, models: list[tuple[str, str]], data: SegmentationData,
                       threads: int, known: dict[tuple[str, str], float] | None = None) -> dict[str, float]:
    """Seconds per step of each ``(arch, encoder)`` with ``threads`` threads, keyed ``"arch/encoder"``.

    Every architecture is timed with its first encoder, and every encoder with the first architecture that
    takes it; a pair not timed is predicted as ``t(arch, its first encoder) * t(a, encoder) / t(a, first)``.
    That is one timing per architecture and per encoder instead of one per pair. Pairs in ``known`` (seconds
    measured earlier with the same threads) are not timed again.
    """
    first_encoder: dict[str, str] = {}
    first_arch: dict[str, str] = {}
    for arch, encoder in models:
        first_encoder.setdefault(arch, encoder)
        first_arch.setdefault(encoder, arch)
    timed = {(arch, encoder) for arch, encoder in models
             if first_encoder[arch] == encoder or first_arch[encoder] == arch}
    seconds = dict(known or {})
    for pair in models:
        if pair in timed and pair not in seconds:
            seconds[pair] = step_seconds(base.replace(arch=pair[0], encoder=pair[1]), data, threads)
    for arch, encoder in models:
        if (arch, encoder) not in seconds:
            via = first_arch[encoder]
            seconds[arch, encoder] = (seconds[arch, first_encoder[arch]] * seconds[via, encoder]
                                      / seconds[via, first_encoder[via]])
    return {f"{arch}/{encoder}": seconds[arch, encoder] for arch, encoder in models}
