"""The search as an Optuna study: ``study.db``, kept current during the search for optuna-dashboard and
Optuna's API, and an in-memory study for parameter importance.

``study.db`` holds one trial per Ray Tune trial (user attribute ``trial_id``) with its real start and end times,
its per-epoch values as intermediate values, ASHA-stopped and budget-stopped trials as PRUNED, failed ones as
FAIL (status and stop reason in user attributes), the metric's name on the study, and parameters under their
space names (``encoder``, its choices the union over the architectures' cases). ``StudyWriter.sync`` brings it up
to date from the tables (``trials.csv``, ``curves.csv``), writing only what changed: the results writer calls it
after every result; ``export_study`` after the fact.

For importance, ``build_study`` counts ASHA-stopped trials as complete with the value they reached, as Ray Tune's
OptunaSearch tells TPE: PED-ANOVA reads complete trials only, and most trials of an ASHA search stop early.
"""

from __future__ import annotations

import datetime
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from searchseg.layout import ExperimentLayout
from searchseg.scoped import optuna_warnings_only
from searchseg.spaces.space import Distribution, Param, SearchSpace
from searchseg.tracking.status import FAILED, Direction, TrialStatus

if TYPE_CHECKING:  # the tables it is built from, as report.load_experiment reads them
    from searchseg.report.experiment import Experiment

LIVE_MARK = "searchseg_live_study"  # a study attribute: written by StudyWriter, safe to update in place
STATES = {TrialStatus.RUNNING.value: TrialState.RUNNING, TrialStatus.COMPLETED.value: TrialState.COMPLETE,
          TrialStatus.EARLY_STOPPED.value: TrialState.PRUNED, TrialStatus.TIME_BUDGET.value: TrialState.PRUNED,
          **{status: TrialState.FAIL for status in FAILED}}
LOST = "not in trials.csv: its driver was killed before Ray saved the trial, which ran again under a new id"


def to_optuna(distribution: Distribution) -> optuna.distributions.BaseDistribution:
    if distribution.kind == "choice":
        return optuna.distributions.CategoricalDistribution(distribution.args)
    low, high = distribution.args
    if distribution.kind == "int":
        return optuna.distributions.IntDistribution(low, high, step=int(distribution.step or 1), log=distribution.log)
    return optuna.distributions.FloatDistribution(low, high, log=distribution.kind == "loguniform",
                                                  step=distribution.step)


def _study_param(param: Param, values: dict) -> tuple[str, Distribution]:
    """A parameter's name and distribution in the study: its own name wherever Optuna allows one distribution
    per name (choices: their union over the cases; ranges of one kind: each case's), else the searcher's."""
    if param.distribution is not None:
        return param.key, param.distribution
    cases = list(param.cases.values())
    if all(case.kind == "choice" for case in cases):
        return param.key, Distribution("choice", list(dict.fromkeys(a for case in cases for a in case.args)))
    name, distribution = param.resolve(values)
    same_kind = all((case.kind, case.log) == (distribution.kind, distribution.log) for case in cases)
    return (param.key if same_kind else name), distribution


def _typed(distribution: Distribution, value):
    """A CSV value back in the type the distribution holds (choices match by value or by text)."""
    if distribution.kind == "choice":
        return next((a for a in distribution.args if a == value or str(a) == str(value)), value)
    return int(value) if distribution.kind == "int" else float(value)


def _params(space: SearchSpace, row: pd.Series) -> tuple[dict[str, Any], dict]:
    values: dict[str, Any] = {}
    params: dict[str, Any] = {}
    distributions: dict[str, optuna.distributions.BaseDistribution] = {}
    for key, param in space.params.items():
        if key not in row or pd.isna(row[key]) or not param.is_active(values):
            continue
        name, distribution = _study_param(param, values)
        values[key] = _typed(distribution, row[key])
        params[name], distributions[name] = values[key], to_optuna(distribution)
    return params, distributions


def _curve(curve: pd.DataFrame | None, metric: str) -> dict[int, float]:
    """A trial's metric by epoch (the intermediate values), epochs without a value left out."""
    if curve is None or metric not in curve:
        return {}
    return {int(e): float(v) for e, v in zip(curve["epoch"], curve[metric], strict=True) if not pd.isna(v)}


def _attrs(row: pd.Series) -> dict[str, str]:
    reason = row.get("stop_reason")
    return {"trial_id": str(row["trial_id"]), "status": str(row["status"]),
            "stop_reason": "" if reason is None or pd.isna(reason) else str(reason)}


def _when(seconds) -> datetime.datetime | None:
    if seconds is None or pd.isna(seconds):
        return None
    return datetime.datetime.fromtimestamp(float(seconds))


def _times(row: pd.Series, curve: pd.DataFrame | None) -> tuple[datetime.datetime, datetime.datetime]:
    """When a trial started and last changed: the writer's ``started_at``/``finished_at`` columns, else (tables
    written before them) its first report less that epoch's seconds, and its last report."""
    start, end = _when(row.get("started_at")), _when(row.get("finished_at"))
    if curve is not None and len(curve) and "reported_at" in curve:
        first = curve.sort_values("epoch").iloc[0]
        seconds = first.get("epoch_seconds", 0.0)
        start = start or _when(first["reported_at"] - (0.0 if pd.isna(seconds) else seconds))
        end = end or _when(curve["reported_at"].max())
    start = start or datetime.datetime.now()
    return start, max(end or start, start)


CREATION_ATTEMPTS = 5


def _shared_storage(path: Path) -> optuna.storages.RDBStorage:
    """``study.db`` opened while a reader (optuna-dashboard) may open it too. A reader may hold the file's lock for
    a moment: wait rather than fail. A reader that opens the file as it appears creates Optuna's tables at the same
    moment as this writer, and one of the two then fails on a table or version row the other wrote: connect again
    (once the tables exist, connecting creates nothing)."""
    url, options = f"sqlite:///{path}", {"connect_args": {"timeout": 60}}
    for attempt in range(CREATION_ATTEMPTS - 1):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=options)
        except (IntegrityError, OperationalError):
            time.sleep(0.1 * (attempt + 1))
    return optuna.storages.RDBStorage(url, engine_kwargs=options)  # a last failure is not a race


class StudyWriter:
    """An experiment's ``study.db`` brought up to date from its tables."""

    def __init__(self, path: Path, name: str, space: SearchSpace | None, metric: str, mode: str) -> None:
        self.arguments = (path, name, space, metric, mode)
        self.storage = _shared_storage(path)
        self.space, self.metric, self.mode = space, metric, Direction(mode)
        with optuna_warnings_only():
            self.study = optuna.create_study(storage=self.storage, study_name=name, direction=self.mode.optuna,
                                             load_if_exists=True)
            self.study.set_metric_names([metric])
        self.study.set_user_attr(LIVE_MARK, True)
        self.known = {t.user_attrs["trial_id"]: t for t in self.study.get_trials(deepcopy=False)
                      if "trial_id" in t.user_attrs}

    def __reduce__(self):
        """Ray Tune pickles its callbacks with the experiment: a restored writer connects again."""
        return (StudyWriter, self.arguments)

    def sync(self, trials: pd.DataFrame, curves: pd.DataFrame, final: bool = False) -> None:
        """Add new trials and the changes of running ones; ``final``: trials still running here but missing from
        ``trials`` (lost with a killed driver) are marked failed."""
        if self.space is None:
            return
        by_trial = {str(tid): group for tid, group in curves.groupby("trial_id")} if len(curves) else {}
        for _, row in trials.iterrows():
            trial_id = str(row["trial_id"])
            known = self.known.get(trial_id)
            if known is None:
                self._add(row, by_trial.get(trial_id))
            elif known.state == TrialState.RUNNING:
                self._update(known, row, _curve(by_trial.get(trial_id), self.metric))
        if final:
            listed = set(trials["trial_id"].astype(str)) if len(trials) else set()
            for trial_id, known in list(self.known.items()):
                if known.state == TrialState.RUNNING and trial_id not in listed:
                    self.storage.set_trial_user_attr(known._trial_id, "stop_reason", LOST)
                    self.storage.set_trial_state_values(known._trial_id, TrialState.FAIL)
                    self.known[trial_id] = self.storage.get_trial(known._trial_id)

    def _state_and_value(self, row: pd.Series) -> tuple[TrialState, float | None]:
        state = STATES.get(str(row["status"]), TrialState.FAIL)
        value = row.get(f"best_{self.metric}")
        if state != TrialState.COMPLETE:
            return state, None
        if value is None or pd.isna(value) or math.isinf(float(value)):
            return TrialState.FAIL, None
        return state, float(value)

    def _add(self, row: pd.Series, curve: pd.DataFrame | None) -> None:
        assert self.space is not None, "sync returns before adding without a space"
        params, distributions = _params(self.space, row)
        state, value = self._state_and_value(row)
        start, end = _times(row, curve)
        intermediate = _curve(curve, self.metric)
        frozen = FrozenTrial(number=0, trial_id=0, state=state, value=value, datetime_start=start,
                             datetime_complete=None if state == TrialState.RUNNING else end, params=params,
                             distributions=distributions, user_attrs=_attrs(row), system_attrs={},
                             intermediate_values=intermediate)
        with optuna_warnings_only():
            self.study.add_trial(frozen)
        added = self.study.get_trials(deepcopy=False)[-1]
        self.known[str(row["trial_id"])] = added

    def _update(self, known: FrozenTrial, row: pd.Series, intermediate: dict[int, float]) -> None:
        storage_id = known._trial_id
        for epoch, epoch_value in intermediate.items():
            if epoch not in known.intermediate_values:
                self.storage.set_trial_intermediate_value(storage_id, epoch, epoch_value)
        for key, text in _attrs(row).items():
            if known.user_attrs.get(key) != text:
                self.storage.set_trial_user_attr(storage_id, key, text)
        state, value = self._state_and_value(row)
        if state != TrialState.RUNNING:  # Optuna stamps the end time now: the writer syncs as a trial ends
            self.storage.set_trial_state_values(storage_id, state, None if value is None else [value])
        self.known[str(row["trial_id"])] = self.storage.get_trial(storage_id)

    def close(self) -> None:
        self.storage.engine.dispose()


def build_study(exp: Experiment) -> optuna.Study:
    """The finished trials as an in-memory study for importance: ASHA-stopped ones complete with their value."""
    with optuna_warnings_only():
        study = optuna.create_study(direction=Direction(exp.settings.mode).optuna)
        if exp.space is None:
            return study
        for _, row in exp.trials.iterrows():
            if row["status"] == TrialStatus.RUNNING:
                continue
            params, distributions = _params(exp.space, row)
            value = row.get(f"best_{exp.metric}")
            failed = row["status"] in FAILED or pd.isna(value)
            study.add_trial(optuna.trial.create_trial(
                params=params, distributions=distributions, value=None if failed else float(value),
                state=TrialState.FAIL if failed else TrialState.COMPLETE))
    return study


def export_study(exp: Experiment) -> Path:
    """``study.db`` from the experiment's tables: brought up to date in place when a search wrote it live (so an
    open optuna-dashboard keeps working), written anew otherwise. ``optuna-dashboard sqlite:///PATH`` opens it."""
    path = ExperimentLayout(exp.path).study
    if path.is_file() and _is_live(path, exp.path.name):
        writer = StudyWriter(path, exp.path.name, exp.space, exp.metric, exp.settings.mode)
        writer.sync(exp.trials, exp.curves, final=not exp.running)
        writer.close()
        return path
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    writer = StudyWriter(tmp, exp.path.name, exp.space, exp.metric, exp.settings.mode)
    writer.sync(exp.trials, exp.curves)
    writer.close()
    tmp.replace(path)
    return path


def _is_live(path: Path, name: str) -> bool:
    """Whether ``path`` holds the study ``name`` as StudyWriter writes it (else: an older export, or no study)."""
    try:
        storage = optuna.storages.RDBStorage(f"sqlite:///{path}")
    except (RuntimeError, SQLAlchemyError):  # another schema, or not a database: written anew
        return False
    try:
        studies = {s.study_name: s for s in storage.get_all_studies()}
        return name in studies and bool(studies[name].user_attrs.get(LIVE_MARK))
    finally:
        storage.engine.dispose()
