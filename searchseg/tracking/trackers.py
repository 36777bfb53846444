"""Experiment trackers: Ray Tune's logger callbacks for the trials, and the final model logged the same way.

TensorBoard event files are written for every trial (Ray adds its TensorBoard logger whenever tensorboardX is
installed) and for the final model (``final/tensorboard``). W&B runs offline unless an API key is set, so it works
without network (``wandb sync`` uploads later). MLflow logs to ``EXPERIMENT/mlflow.db`` with its artifacts in
``EXPERIMENT/mlartifacts``, not in a ``mlruns`` folder wherever the search was launched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pandas as pd

from searchseg.errors import UserError
from searchseg.layout import ExperimentLayout
from searchseg.options import Tracker, named
from searchseg.spaces.config import TrialConfig
from searchseg.tracking.final_metrics import FinalMetrics
from searchseg.training.engine import metric_name

PACKAGES = {Tracker.TENSORBOARD: "tensorboardX", Tracker.WANDB: "wandb", Tracker.MLFLOW: "mlflow"}
FINAL_RUN = "final"


def known_trackers(trackers: list[str | Tracker]) -> list[Tracker]:
    return [named(Tracker, tracker, "tracker") for tracker in trackers]


def _missing(tracker: Tracker, error: ImportError) -> UserError:
    return UserError(f"--tracker {tracker} needs {PACKAGES[tracker]}: pip install 'searchseg[trackers]' ({error})")


def _wandb_mode() -> Literal["online", "offline", "disabled", "shared"]:
    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    if mode not in ("online", "offline", "disabled", "shared"):
        raise UserError(f"WANDB_MODE={mode!r} is not one of online, offline, disabled, shared")
    return mode  # type: ignore[return-value]  # checked just above


def mlflow_experiment(experiment_dir: Path, name: str) -> tuple[str, str]:
    """The tracking URI of an experiment's MLflow store and the id of its MLflow experiment, created with the
    artifacts inside the experiment folder (MLflow's default is ``./mlruns`` of the current folder)."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{Path(experiment_dir).resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return uri, existing.experiment_id
    return uri, client.create_experiment(
        name, artifact_location=(Path(experiment_dir).resolve() / "mlartifacts").as_uri())


def tracker_callbacks(trackers: list[str | Tracker], experiment_dir: Path, name: str) -> list:
    """Ray Tune's own logger callbacks for the trials."""
    callbacks: list = []
    for tracker in known_trackers(trackers):
        try:
            if tracker is Tracker.TENSORBOARD:
                import tensorboardX  # noqa: F401  (Ray's default logger needs it)
            elif tracker is Tracker.WANDB:
                from ray.air.integrations.wandb import WandbLoggerCallback

                # Ray passes only the API key on to its logging actors, so the mode travels as an init argument.
                os.environ["WANDB_MODE"] = mode = _wandb_mode()
                callbacks.append(WandbLoggerCallback(project="searchseg", group=name, dir=str(experiment_dir),
                                                     mode=mode))
            else:
                from ray.air.integrations.mlflow import MLflowLoggerCallback

                callbacks.append(MLflowLoggerCallback(tracking_uri=mlflow_experiment(experiment_dir, name)[0],
                                                      experiment_name=name, save_artifact=False))
        except ImportError as error:
            raise _missing(tracker, error) from None
    return callbacks


def final_scalars(summary: FinalMetrics) -> dict[str, float]:
    """The final model's test metrics as tracker scalars (per-class names made tag-safe, still readable)."""
    scalars = {"test_miou": summary.test_miou, "test_miou_std": summary.test_miou_std,
               "test_dice": summary.mean_dice, "test_pixel_accuracy": summary.mean_pixel_accuracy}
    scalars.update({f"test_iou.{metric_name(name)}": value for name, value in summary.iou_per_class.items()})
    return {key: float(value) for key, value in scalars.items()}


def log_final_model(trackers: list[str | Tracker], experiment_dir: Path, name: str, config: TrialConfig,
                    summary: FinalMetrics, curves: pd.DataFrame) -> None:
    """Log the final model to each tracker beside the trials: its config, its per-epoch curves (of its first
    seed) and its test metrics; MLflow also keeps its metrics, card, curves and config as artifacts."""
    final = ExperimentLayout(experiment_dir).final()
    first_seed = curves[curves["seed"] == curves["seed"].iloc[0]] if len(curves) else curves
    epochs = [{k: float(v) for k, v in row.items() if k not in ("seed", "epoch") and pd.notna(v)}
              for row in first_seed.to_dict("records")]
    scalars, params = final_scalars(summary), {k: str(v) for k, v in config.to_flat().items()}
    for tracker in known_trackers(trackers):
        try:
            if tracker is Tracker.TENSORBOARD:
                from tensorboardX import SummaryWriter

                with SummaryWriter(str(final.path / "tensorboard")) as writer:
                    for step, row in enumerate(epochs, start=1):
                        for key, value in row.items():
                            writer.add_scalar(f"final/{key}", value, step)
                    for key, value in scalars.items():
                        writer.add_scalar(f"final/{key}", value, len(epochs))
            elif tracker is Tracker.WANDB:
                import wandb

                run = wandb.init(project="searchseg", group=name, name=FINAL_RUN, dir=str(experiment_dir),
                                 mode=_wandb_mode(), config=params, reinit="create_new")
                for step, row in enumerate(epochs, start=1):
                    run.log(row, step=step)
                run.summary.update(scalars)
                run.finish()
            else:
                import mlflow

                uri, experiment_id = mlflow_experiment(experiment_dir, name)
                client = mlflow.MlflowClient(tracking_uri=uri)
                run_id = client.create_run(experiment_id, run_name=FINAL_RUN).info.run_id
                client.log_batch(run_id, params=[mlflow.entities.Param(k, v[:6000]) for k, v in params.items()])
                for step, row in enumerate(epochs, start=1):
                    for key, value in row.items():
                        client.log_metric(run_id, key, value, step=step)
                for key, value in scalars.items():
                    client.log_metric(run_id, key, value)
                for file in final.shared_files:
                    if file.is_file():
                        client.log_artifact(run_id, str(file))
                client.set_terminated(run_id)
        except ImportError as error:
            raise _missing(tracker, error) from None
