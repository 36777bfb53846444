"""Names shared by the trainable, the results writer, the progress bar and the report: trial statuses and the
direction of the search's metric.

``str`` enums, so a status read back from ``trials.csv`` compares equal to its member; sets of them are kept
as plain strings for pandas' ``isin``.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Literal

import pandas as pd


class TrialStatus(str, Enum):
    RUNNING = "running"
    COMPLETED = "completed"  # trained every epoch the search allows
    EARLY_STOPPED = "early_stopped"  # stopped by ASHA at a rung
    TIME_BUDGET = "time_budget"  # still running when the search's share of --budget ran out
    NAN_LOSS = "nan_loss"
    OUT_OF_MEMORY = "out_of_memory"
    INVALID_CONFIG = "invalid_config"  # a sample the engine refuses
    INFEASIBLE = "infeasible"  # slower than --max-latency-ms: measured, never trained
    ERROR = "error"  # raised until Ray's retries were used up

    def __str__(self) -> str:
        return self.value


# The reported key naming a trial's failure (a ``TrialStatus`` value; empty while it trains), apart from
# ``stop_reason``, the human-readable why.
FAILURE_KEY = "failure"
FINISHED = frozenset(s.value for s in (TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED, TrialStatus.TIME_BUDGET))
FAILED = frozenset(s.value for s in (TrialStatus.NAN_LOSS, TrialStatus.OUT_OF_MEMORY, TrialStatus.INVALID_CONFIG,
                                     TrialStatus.INFEASIBLE, TrialStatus.ERROR))


def finished_status(epochs_run: int, max_epochs: int) -> TrialStatus:
    """The status of a trial that ended without failing: all its epochs, or fewer because ASHA stopped it."""
    return TrialStatus.COMPLETED if epochs_run >= max_epochs else TrialStatus.EARLY_STOPPED


class Direction(str, Enum):
    """Whether the search's metric is maximised (``val_miou``) or minimised (``val_loss``)."""

    MAX = "max"
    MIN = "min"

    def __str__(self) -> str:
        return self.value

    def is_better(self, value: float, than: float) -> bool:
        return value > than if self is Direction.MAX else value < than

    def best(self, values: Iterable[float]) -> float:
        return max(values) if self is Direction.MAX else min(values)

    def best_so_far(self, values: pd.Series) -> pd.Series:
        return values.cummax() if self is Direction.MAX else values.cummin()

    def best_index(self, values: pd.Series):
        return values.idxmax() if self is Direction.MAX else values.idxmin()

    @property
    def optuna(self) -> Literal["maximize", "minimize"]:
        return "maximize" if self is Direction.MAX else "minimize"
