"""A search over several objectives (the metric and costs such as latency) with a latency limit.

Optuna samples multi-objective spaces but prunes only single-objective ones, and Ray Tune's schedulers take one
metric. ``ParetoASHA`` is asynchronous successive halving whose rungs rank trials by non-dominated sorting,
then crowding distance (as MOASHA does), so a fast model with a lower mIoU is promoted beside a slow accurate
one. ``ObjectiveSearch`` is Ray Tune's OptunaSearch that also tells Optuna how far a trial broke the latency
limit (an Optuna constraint), so TPE and NSGA-II learn to avoid slow configurations, and that can start from an
earlier experiment's trials (``--warm-start``).
"""

from __future__ import annotations

import math

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from searchseg.spaces.space import SpaceSampler, asha_rungs
from searchseg.tracking.pareto import MODEL_KEY, among_best, cost_tolerance
from searchseg.tracking.status import FAILURE_KEY
from searchseg.tuning.warm_start import WarmTrial, tell_study

LATENCY_CONSTRAINT = "latency_ms"  # Optuna constraint: latency_ms - max_latency_ms, feasible when <= 0


class ObjectiveSearch(OptunaSearch):
    """OptunaSearch over one metric or several (``metric``/``mode`` lists), setting each trial's latency
    constraint before Optuna is told its values (any Optuna sampler that handles constraints reads it); a trial
    missing one of the objectives is told as failed."""

    def __init__(self, *args, max_latency_ms: float | None = None, warm_trials: list[WarmTrial] | None = None,
                 **kwargs) -> None:
        self.warm_trials = warm_trials or []  # set before OptunaSearch's __init__ sets the study up
        super().__init__(*args, **kwargs)
        self.max_latency_ms = max_latency_ms

    def _setup_study(self, mode) -> None:
        if not self.warm_trials:
            return super()._setup_study(mode)
        # An earlier experiment's trials (--warm-start) go into the study first, the start points after them, so
        # the study lists the trials in the order they were run.
        points, self._points_to_evaluate = self._points_to_evaluate, []
        super()._setup_study(mode)
        self._points_to_evaluate = points
        sampler, study = self._space, self._ot_study
        assert isinstance(sampler, SpaceSampler) and study is not None, "set up by OptunaSearch, define-by-run"
        tell_study(study, sampler.space, self.warm_trials)
        for point in points:
            study.enqueue_trial(point)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and trial_id in self._ot_trials and trial_id not in self._completed_trials:
            if self.max_latency_ms is not None and result.get("latency_ms") is not None:
                self._ot_trials[trial_id].set_constraint(LATENCY_CONSTRAINT,
                                                         float(result["latency_ms"]) - self.max_latency_ms)
            metrics = self.metric if isinstance(self.metric, list) else [self.metric]
            if any(result.get(name) is None or _is_nan(result[name]) for name in metrics):
                result, error = None, True
        super().on_trial_complete(trial_id, result, error)


def _is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


class ParetoASHA(FIFOScheduler):
    """Asynchronous successive halving over several objectives: at each rung a trial goes on while fewer than
    1/``reduction_factor`` of the trials recorded there (itself included) rank strictly above it. A model's costs
    are the median of what every trial of it measured (``MODEL_KEY``), and costs within ``COST_TOLERANCE`` tie, so
    of two trials of one model the one with the lower metric is not kept for having measured a faster latency."""

    def __init__(self, objectives: dict[str, str], max_t: int, grace_period: int, reduction_factor: int,
                 time_attr: str = "training_iteration") -> None:
        super().__init__()
        self.objective, *self.costs = objectives  # the metric first, then costs (minimised)
        self.maximise = np.array([mode == "max" for mode in objectives.values()])
        self.tolerance = cost_tolerance(len(objectives))
        self.time_attr, self.reduction_factor = time_attr, reduction_factor
        self.models: dict[str, tuple] = {}  # trial id -> its model's key
        self.measured: dict[tuple, list[list[float]]] = {}  # model key -> the costs each of its trials measured
        self.recorded: dict[int, dict[str, float]] = {  # rung -> trial id -> metric there; the last rung ends all
            rung: {} for rung in asha_rungs(grace_period, max_t, reduction_factor)[:-1]}

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return True  # the objectives are this scheduler's own

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if result.get(FAILURE_KEY):
            return TrialScheduler.CONTINUE  # the trial reported its failure and ends by itself
        if trial.trial_id not in self.models:
            costs = [result.get(name) for name in self.costs]
            if any(value is None or _is_nan(value) for value in costs):
                return TrialScheduler.STOP
            key = tuple(result.get(name, trial.trial_id) for name in MODEL_KEY)
            self.models[trial.trial_id] = key
            self.measured.setdefault(key, []).append([float(value) for value in costs if value is not None])
        reached = result.get(self.time_attr, 0)
        for rung in sorted(self.recorded, reverse=True):
            recorded = self.recorded[rung]
            if reached < rung or trial.trial_id in recorded:
                continue
            metric = result.get(self.objective)
            if metric is None or _is_nan(metric):
                return TrialScheduler.STOP
            recorded[trial.trial_id] = float(metric)
            points = np.array([[value, *np.median(self.measured[self.models[trial_id]], axis=0)]
                               for trial_id, value in recorded.items()])
            keep = max(1, math.ceil(len(points) / self.reduction_factor))
            index = list(recorded).index(trial.trial_id)
            promoted = among_best(points, self.maximise, index, keep, self.tolerance)
            return TrialScheduler.CONTINUE if promoted else TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        counts = ", ".join(f"{len(trials)} at epoch {rung}" for rung, trials in sorted(self.recorded.items()))
        return f"ParetoASHA over {', '.join([self.objective, *self.costs])}: {counts}"
