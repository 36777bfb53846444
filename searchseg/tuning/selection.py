"""Which trial a budgeted search's final model continues.

A trial's validation score after a few hundred steps on a few images is noisy, and the highest of several noisy
scores is the most inflated one (the winner's curse): on 9 validation images a sampled SegFormer "won" a search at
270 steps and was not beaten by its own continuation for 115 more epochs, while the start configuration it beat
kept improving. A space's ``start:`` configurations are known-good recipes, so they are the default: the best
sampled trial replaces the best start trial only when its validation predictions, pooled over its last
``RECENT_EPOCHS`` evaluations, score a higher mIoU on at least ``CLEARLY_BETTER_WIN_RATE`` of bootstrap resamples
of the validation images. Pooling over epochs averages out the epoch-to-epoch swings of a trial whose learning
rate is still high; resampling images measures how much a lead rests on a few of them.

Whatever the choice, the record says what the search added over the space's default, its first start configuration
(what a run without a search trains): the share of resamples on which the chosen trial beat the default's trial.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from searchseg.layout import CheckpointLayout
from searchseg.tracking.status import Direction
from searchseg.training.metrics import CLEARLY_BETTER_WIN_RATE, bootstrap_win_rate, counts_from_confusions

RECENT_EPOCHS = 3


@dataclass(frozen=True)
class Candidate:
    """A trial that reported: its id, searched config, best score and latest checkpoint (a Ray Checkpoint)."""

    trial_id: str
    config: dict[str, Any]
    score: float
    checkpoint: Any = None


@dataclass(frozen=True)
class TrialChoice:
    """Which trial the final model continues, and why: ``best_score``, or ``start_unless_clearly_beaten`` with
    the two trials compared and the share of resamples on which the sampled one scored higher."""

    rule: str
    trial: str
    sampled_trial: str | None = None
    start_trial: str | None = None
    sampled_win_rate: float | None = None
    default_trial: str | None = None  # the trial of the space's first start configuration, when it reported
    over_default_win_rate: float | None = None  # the chosen trial against it, when they differ (mIoU only)

    def to_dict(self) -> dict[str, Any]:
        """The record kept in ``final/metrics.json`` (fields that do not apply left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None}


def is_start(config: dict[str, Any], starts: Sequence[dict[str, Any]]) -> bool:
    return any(all(config.get(key) == value for key, value in start.items()) for start in starts)


def saved_counts(checkpoint_folder: Path) -> np.ndarray | None:
    """A trial's validation class counts per image over its last evaluations ``(epochs, N, 3, C)``, or None if not
    saved; a checkpoint written before the counts holds confusion matrices, converted here."""
    saved = CheckpointLayout(checkpoint_folder)
    if saved.counts.is_file():
        return np.load(saved.counts)
    return counts_from_confusions(np.load(saved.confusions)) if saved.confusions.is_file() else None


def recent_counts(checkpoint_folder: Path) -> np.ndarray | None:
    """A trial's validation class counts per image summed over its last evaluations, or None if not saved."""
    counts = saved_counts(checkpoint_folder)
    return None if counts is None else counts.sum(axis=0)


def choose_trial(candidates: Sequence[Candidate], starts: Sequence[dict[str, Any]], metric: str, mode: str,
                 read_counts: Callable[[Candidate], np.ndarray | None]) -> tuple[Candidate, TrialChoice]:
    """The trial to continue, and a record of the choice (for the final model's ``metrics.json``).

    Candidates are ranked by ``score`` in the direction ``mode`` ("max" or "min"). The resampling test counts
    mIoU, so with another ``metric`` the best score is taken as it is. ``read_counts`` gives a trial's
    pooled validation class counts (``recent_counts`` of its checkpoint folder); it is called once per trial and
    for three trials at most, as a checkpoint on remote storage is fetched to be read.
    """
    if not candidates:
        raise ValueError("no trial to choose from")
    read: dict[str, np.ndarray | None] = {}

    def read_once(candidate: Candidate) -> np.ndarray | None:
        if candidate.trial_id not in read:
            read[candidate.trial_id] = read_counts(candidate)
        return read[candidate.trial_id]

    ranked = sorted(candidates, key=lambda c: c.score, reverse=Direction(mode) is Direction.MAX)
    chosen, choice = _choose(ranked, starts, metric, read_once)
    default = next((c for c in ranked if starts and is_start(c.config, starts[:1])), None)
    if default is None:
        return chosen, choice
    if default is chosen or metric != "val_miou":
        return chosen, replace(choice, default_trial=default.trial_id)
    ours, theirs = read_once(chosen), read_once(default)
    win_rate = bootstrap_win_rate(ours, theirs) if ours is not None and theirs is not None and \
        ours.shape == theirs.shape else None
    return chosen, replace(choice, default_trial=default.trial_id, over_default_win_rate=win_rate)


def _choose(ranked: Sequence[Candidate], starts: Sequence[dict[str, Any]], metric: str,
            read_counts: Callable[[Candidate], np.ndarray | None]) -> tuple[Candidate, TrialChoice]:
    """The best-ranked trial, or the best start configuration's unless that trial beats it clearly."""
    best = ranked[0]
    best_start = next((c for c in ranked if is_start(c.config, starts)), None)
    if best_start is None or best_start is best or metric != "val_miou":
        return best, TrialChoice("best_score", best.trial_id)
    sampled, start = read_counts(best), read_counts(best_start)
    if sampled is None or start is None or sampled.shape != start.shape:
        return best, TrialChoice("best_score", best.trial_id)
    win_rate = bootstrap_win_rate(sampled, start)
    chosen = best if win_rate >= CLEARLY_BETTER_WIN_RATE else best_start
    return chosen, TrialChoice("start_unless_clearly_beaten", chosen.trial_id, best.trial_id, best_start.trial_id,
                               win_rate)
