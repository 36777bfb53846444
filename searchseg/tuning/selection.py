"""Which trial a budgeted search's final model continues.

A trial's validation score after a few hundred steps on a few images is noisy, and the highest of several noisy
scores is the most inflated one (the winner's curse): on 9 validation images a sampled SegFormer "won" a search at
270 steps and was not beaten by its own continuation for 115 more epochs, while the start configuration it beat
kept improving. A space's first ``start:`` configuration is its default (what a run without a search trains), so
the final model continues the default's trial unless another trial, start configuration or TPE sample, beats it
clearly: its validation predictions, pooled over its last ``RECENT_EPOCHS`` evaluations, score a higher mIoU than
the default's on at least ``CLEARLY_BETTER_WIN_RATE`` of bootstrap resamples of the validation images (of their
independent groups: a tile's crops are drawn together). Pooling over epochs averages out the epoch-to-epoch swings
of a trial whose learning rate is still high; resampling images measures how much a lead rests on a few of them.
Of several trials that beat the default clearly, the best-scoring one is continued.

The record keeps each compared trial's share of resamples on which it beat the default and the searched keys of
the trials it names: what the search added over the default, and how sure validation is of it
(``tracking.search_gain`` puts it in words for the run's output and the report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from searchseg.layout import CheckpointLayout
from searchseg.tracking.status import Direction
from searchseg.training.class_counts import CLEARLY_BETTER_WIN_RATE, bootstrap_win_rate, counts_from_confusions

RECENT_EPOCHS = 3
MAX_CHALLENGERS = 2  # trials above the default compared with it: each read may fetch a remote checkpoint


@dataclass(frozen=True)
class Candidate:
    """A trial that reported: its id, searched config, best score and latest checkpoint (a Ray Checkpoint)."""

    trial_id: str
    config: dict[str, Any]
    score: float
    checkpoint: Any = None


@dataclass(frozen=True)
class TrialChoice:
    """Which trial the final model continues, and why: ``default_unless_clearly_beaten``, with the trials that
    scored higher than the default and the share of resamples on which each beat it, or ``best_score`` where no
    resampling test applies (no default trial, its counts unreadable, a metric other than mIoU)."""

    rule: str
    trial: str
    default_trial: str | None = None  # the trial of the space's first start configuration, when it reported
    win_rates: dict[str, float] = field(default_factory=dict)  # over the default, of the trials compared with it
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # the searched keys of the trials named here

    def to_dict(self) -> dict[str, Any]:
        """The record kept in ``final/metrics.json`` (fields that do not apply left out)."""
        return {key: value for key, value in asdict(self).items() if value is not None and value != {}}


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
                 read_counts: Callable[[Candidate], np.ndarray | None],
                 groups: list[str] | None = None,
                 win_rate: float = CLEARLY_BETTER_WIN_RATE) -> tuple[Candidate, TrialChoice]:
    """The trial to continue, and a record of the choice (for the final model's ``metrics.json``).

    Candidates are ranked by ``score`` in the direction ``mode`` ("max" or "min"). The resampling test counts
    mIoU, so with another ``metric`` the best score is taken as it is. ``read_counts`` gives a trial's
    pooled validation class counts (``recent_counts`` of its checkpoint folder); it is called for the default and
    the ``MAX_CHALLENGERS`` best-scoring trials above it at most, as a checkpoint on remote storage is fetched to
    be read. ``groups`` (one per validation image) are resampled whole (``bootstrap_win_rate``). ``win_rate``:
    the share of resamples a challenger must win to count as clearly better (other values for the replay
    benchmark's comparison of bars).
    """
    if not candidates:
        raise ValueError("no trial to choose from")
    ranked = sorted(candidates, key=lambda c: c.score, reverse=Direction(mode) is Direction.MAX)
    best = ranked[0]
    default = next((c for c in ranked if starts and is_start(c.config, starts[:1])), None)
    if default is None:
        return best, TrialChoice("best_score", best.trial_id)
    challengers = ranked[:ranked.index(default)][:MAX_CHALLENGERS]
    theirs = read_counts(default) if challengers and metric == "val_miou" else None
    if theirs is None:  # nothing scored higher, or nothing to resample: the ranking stands
        return best, TrialChoice("best_score" if challengers else "default_unless_clearly_beaten", best.trial_id,
                                 default.trial_id, configs=_configs(best, default))
    win_rates = {}
    for challenger in challengers:
        ours = read_counts(challenger)
        if ours is not None and ours.shape == theirs.shape:
            win_rates[challenger.trial_id] = bootstrap_win_rate(ours, theirs, groups)
    chosen = next((c for c in challengers if win_rates.get(c.trial_id, 0.0) >= win_rate), default)
    return chosen, TrialChoice("default_unless_clearly_beaten", chosen.trial_id, default.trial_id, win_rates,
                               _configs(chosen, default, *challengers))


def _configs(*candidates: Candidate) -> dict[str, dict[str, Any]]:
    return {candidate.trial_id: dict(candidate.config) for candidate in candidates}
