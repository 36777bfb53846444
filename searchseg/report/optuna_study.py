"""The search as an Optuna study: for parameter importance, and as ``study.db`` for optuna-dashboard.

Trials keep the Optuna parameter names the search used (``encoder:arch:unet`` for a case-dependent
parameter) and their per-epoch values as intermediate values. As Ray Tune's OptunaSearch does,
ASHA-stopped trials count as complete with the value they reached; failed trials are FAIL; trials
still running are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from searchseg.report.experiment import Experiment
from searchseg.scoped import optuna_warnings_only
from searchseg.space import Distribution
from searchseg.status import FAILED, Direction, TrialStatus

STUDY_FILE = "study.db"


def to_optuna(distribution: Distribution) -> optuna.distributions.BaseDistribution:
    if distribution.kind == "choice":
        return optuna.distributions.CategoricalDistribution(distribution.args)
    low, high = distribution.args
    if distribution.kind == "int":
        return optuna.distributions.IntDistribution(low, high, step=int(distribution.step or 1), log=distribution.log)
    return optuna.distributions.FloatDistribution(low, high, log=distribution.kind == "loguniform",
                                                  step=distribution.step)


def _typed(distribution: Distribution, value):
    """A CSV value back in the type the distribution holds (choices match by value or by text)."""
    if distribution.kind == "choice":
        return next((a for a in distribution.args if a == value or str(a) == str(value)), value)
    return int(value) if distribution.kind == "int" else float(value)


def build_study(exp: Experiment, storage: str | optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """The experiment's trials as an Optuna study (in memory, or in ``storage``)."""
    with optuna_warnings_only():
        return _build_study(exp, storage)


def _build_study(exp: Experiment, storage: str | optuna.storages.BaseStorage | None) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name=exp.path.name,
                                direction=Direction(exp.settings.mode).optuna)
    if exp.space is None:
        return study
    curves = {tid: group.set_index("epoch")[exp.metric].dropna().to_dict()
              for tid, group in exp.curves.groupby("trial_id")}
    for _, row in exp.trials.iterrows():
        if row["status"] == TrialStatus.RUNNING:
            continue
        values: dict[str, Any] = {}
        params: dict[str, Any] = {}
        distributions: dict[str, optuna.distributions.BaseDistribution] = {}
        for key, param in exp.space.params.items():
            if key not in row or pd.isna(row[key]) or not param.is_active(values):
                continue
            name, distribution = param.resolve(values)
            values[key] = _typed(distribution, row[key])
            params[name], distributions[name] = values[key], to_optuna(distribution)
        failed = row["status"] in FAILED
        value = row.get(f"best_{exp.metric}")
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions,
            value=None if failed or pd.isna(value) else float(value),
            state=optuna.trial.TrialState.FAIL if failed or pd.isna(value) else optuna.trial.TrialState.COMPLETE,
            intermediate_values={int(e): float(v) for e, v in curves.get(row["trial_id"], {}).items()},
            user_attrs={"trial_id": str(row["trial_id"]), "status": row["status"],
                        "stop_reason": "" if pd.isna(row.get("stop_reason")) else str(row.get("stop_reason"))},
        ))
    return study


def export_study(exp: Experiment) -> Path:
    """Rewrite ``study.db`` from the current tables: ``optuna-dashboard sqlite:///PATH/study.db`` opens it."""
    path = exp.path / STUDY_FILE
    tmp = path.with_name(f".{STUDY_FILE}.tmp")
    tmp.unlink(missing_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp}")
    build_study(exp, storage)
    storage.engine.dispose()
    tmp.replace(path)
    return path
