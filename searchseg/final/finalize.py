"""The final model of a search, evaluated on the held-out test split.

Two rules. ``retrain_best`` retrains the best configuration from scratch on train+val for the search's
epoch budget (a search run by ``--samples``/``--epochs``). ``continue_best`` (a ``--budget`` run) continues
the best trial's own checkpoint with all the machine's resources until the budget's final share is used,
and keeps the last epoch unless the trial's own state beats it on validation beyond resampling noise.

Both write ``EXPERIMENT/final/``: ``metrics.json`` (test mIoU, per-class IoU, Dice, pixel accuracy and
confusion matrix; mean and spread over seeds), ``model.pt`` (weights of the first seed),
``config.yaml``, ``curves.csv`` (per-epoch losses of each seed), ``overlays/`` (image | ground
truth | prediction), ``model_card.json`` (what ``searchseg predict`` needs), and with ``export`` a deployable model
checked against PyTorch.
"""

from __future__ import annotations

import copy
import glob
import math
import time
from pathlib import Path

import pandas as pd
import torch

from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.errors import UserError
from searchseg.final.evaluate import export_model, write_overlays
from searchseg.final.model_card import ONNX_METADATA_KEY, build_model_card
from searchseg.io_utils import atomic_write, atomic_write_text, folder_name
from searchseg.layout import ExperimentLayout, FinalLayout
from searchseg.machine import available_cpus
from searchseg.palette import class_palette
from searchseg.provenance import run_metadata
from searchseg.spaces.config import TrialConfig
from searchseg.tracking.final_metrics import FinalMetrics
from searchseg.training.checkpoints import load_state, save_state
from searchseg.training.class_counts import CLEARLY_BETTER_WIN_RATE, bootstrap_win_rate
from searchseg.training.engine import FitStatus, StopTraining, Trainer, fit, torch_threads, validate_config
from searchseg.tuning.selection import TrialChoice


def retrain_best(experiment_dir: Path, data: SegmentationData | None = None, seeds: int = 1,
                 epochs: int | None = None, export: str | None = None, overlays: int = 6,
                 progress: bool = True, echo=print, trial: str | None = None) -> FinalMetrics:
    """Retrain ``best_config.yaml`` of an experiment ``seeds`` times and evaluate on the test split, into
    ``final/``; with ``trial`` (an id of ``trials.csv``, e.g. a point of ``pareto.csv``), that trial's configuration
    into ``final-TRIAL/``."""
    layout = ExperimentLayout(experiment_dir)
    config_path = layout.best_config if trial is None else _trial_config(layout, trial)
    if not config_path.is_file():
        raise UserError(f"{experiment_dir} is not a finished searchseg experiment (no best_config.yaml)")
    if seeds < 1:
        raise UserError(f"--seeds must be >= 1, got {seeds}")
    config = TrialConfig.load(config_path).replace(threads=torch.get_num_threads())  # all, not the trial's share
    if epochs is not None:
        config = config.replace(epochs=epochs)
    validate_config(config)  # its names and plugins, before the data is decoded
    data = data or load_from_config(config, progress=progress)
    if not len(data.splits["test"]):
        raise UserError("the test split is empty (test_fraction=0); set test_fraction > 0 to evaluate")
    runs, curves, first_trainer = [], [], None
    for offset in range(seeds):
        seeded = config.replace(seed=config.seed + offset)
        echo(f"retraining {seeded.arch}/{seeded.encoder} on train+val for {seeded.epochs} epochs (seed {seeded.seed})")
        trainer = Trainer(seeded, data, train_splits=("train", "val"), eval_split="test")
        result = fit(seeded, data, progress=progress, trainer=trainer)
        if result.status is not FitStatus.COMPLETED:
            raise UserError(f"retraining stopped: {result.reason}; try a lower lr in {config_path}")
        curves += [{"seed": seeded.seed, **{k: v for k, v in row.items() if "." not in k}} for row in result.history]
        _, metrics = trainer.evaluate("test")
        runs.append({"seed": seeded.seed, **metrics})
        echo(f"  test mIoU {metrics['miou']:.4f}, Dice {metrics['dice']:.4f}, "
             f"pixel accuracy {metrics['pixel_accuracy']:.4f}")
        first_trainer = first_trainer or trainer
    assert first_trainer is not None, "seeds >= 1 trains at least one model"
    return _write_final(layout.final(trial), config, first_trainer, runs, curves, export, overlays, echo)


def _trial_config(layout: ExperimentLayout, trial: str) -> Path:
    """The full config a trial saved beside its results, in its Ray Tune trial folder."""
    folder_name(trial, "--trial")  # it names final-TRIAL/: one folder inside the experiment
    found = [folder.config for folder in layout.trial_folders(glob.escape(trial)) if folder.config.is_file()]
    if not found:
        raise UserError(f"{layout.path} has no trial {trial!r} with a saved config; pick a trial_id from its "
                        "pareto.csv or trials.csv")
    return found[0]


def _write_final(final: FinalLayout, config: TrialConfig, first_trainer: Trainer, runs: list[dict], curves: list[dict],
                 export: str | None, overlays: int, echo, final_training: dict | None = None) -> FinalMetrics:
    data = first_trainer.data
    summary = FinalMetrics.from_runs(
        runs, class_names=list(data.class_names),
        class_colors=class_palette(data.class_colors, data.num_classes).tolist(),  # as the overlays draw them
        test_images=len(data.splits["test"]), epochs=config.epochs, data_fingerprint=data.fingerprint,
        final_training=final_training, **run_metadata())
    config.save(final.config)
    atomic_write(final.model, lambda tmp: torch.save(first_trainer.model.state_dict(), tmp))
    atomic_write_text(final.curves, pd.DataFrame(curves).to_csv(index=False))
    shown = data.splits["test"][:overlays]
    predictions = first_trainer.predict(shown)
    write_overlays(data.images[shown], data.masks[shown], predictions, [data.names[i] for i in shown],
                   data.class_colors, data.ignore_index, final.overlays)
    card = build_model_card(config, data, summary, onnx=final.export("onnx").name if export == "onnx" else None)
    if export:
        path = final.export(export)
        example = first_trainer.prepare_images(torch.from_numpy(data.images[shown[:1]]).permute(0, 3, 1, 2))
        difference, scale = export_model(first_trainer.model, export, path, example,
                                         metadata={ONNX_METADATA_KEY: card.to_json()})
        summary.export = {"format": export, "path": path.name, "max_abs_logit_difference": difference,
                          "max_abs_logit": scale}
        echo(f"exported {path} (largest logit difference from PyTorch: {difference:.2e}, largest logit {scale:.2e})")
    card.save(final.path)
    summary.save(final.metrics)
    return summary


def continue_best(experiment_dir: Path, state_path: Path | None, data: SegmentationData, deadline: float,
                  step_seconds: float, export: str | None = None, overlays: int = 6, progress: bool = True,
                  echo=print, trial_choice: TrialChoice | None = None) -> FinalMetrics:
    """Continue the best trial from ``state_path`` on the training split until ``deadline`` (wall clock);
    with no state (no trial reported in time), train ``best_config.yaml`` from scratch the same way.

    The final model is the last epoch's state, its learning rate annealed to zero at the deadline, unless the
    trial's own state scores higher on validation beyond resampling noise (``CLEARLY_BETTER_WIN_RATE`` of bootstrap
    resamples of the validation images' independent groups): never clearly worse than what the search trained. The
    epoch with the best validation score is not picked: on small validation splits that score is noisy while the
    learning rate is high, and the noisiest peak is the one picked (it is evaluated on the test split and recorded,
    for comparison only). ``step_seconds``, the plan's estimate of one optimizer step on all resources, sizes the
    training until its first epoch is measured; after every epoch the run re-plans the steps left before the
    deadline from the pace measured so far (``FinalPace``), the last epoch shorter than the others where a whole one
    would not fit. When even the first epoch is longer than the time left, it is shortened to fit. With no trial
    state (no trial reported in time), one whole epoch is trained even past the deadline.
    ``trial_choice``, how the search chose the trial, is recorded with the rule.
    """
    layout = ExperimentLayout(experiment_dir)
    config = TrialConfig.load(layout.best_config).replace(threads=available_cpus())
    with torch_threads(config.threads):
        run = FinalTraining(config, data, state_path, layout.final().checkpoint)
        echo(f"final model: training {config.arch}/{config.encoder} {run.origin} "
             f"(val mIoU {run.start['val_miou']:.4f}) on {torch.get_num_threads()} threads until "
             f"{time.strftime('%H:%M:%S', time.localtime(deadline))}")
        run.train_until(deadline, step_seconds, progress, echo)
        comparison = run.best_val_epoch_record()
        kept, trial_win_rate, candidate_test = _keep_last_unless_trial_clearly_better(run.trainer, run.start, run.last)
    trainer, start = run.trainer, run.start
    described = "the trial's own state" if kept is start else f"its last epoch, {kept['epoch']}"
    metrics = candidate_test["trial" if kept is start else "last"]
    echo(f"final model: {described} (val mIoU {kept['val_miou']:.4f} against {start['val_miou']:.4f} at the "
         f"start; the trial scored higher on {trial_win_rate:.0%} of validation resamples); "
         f"test mIoU {metrics['miou']:.4f}, Dice {metrics['dice']:.4f}")
    curves = [{"seed": config.seed, **{k: v for k, v in row.items() if "." not in k}} for row in run.history]
    rule = {"rule": "continue_best", "start_epoch": start["epoch"], "epochs_run": trainer.epoch,
            "steps_per_epoch": trainer.steps_per_epoch, "start_val_miou": start["val_miou"],
            "kept_epoch": kept["epoch"], "kept_val_miou": kept["val_miou"], "trial_win_rate": trial_win_rate,
            **{f"{name}_test_miou": values["miou"] for name, values in candidate_test.items()}, **comparison,
            **({"trial_choice": trial_choice.to_dict()} if trial_choice else {})}
    summary = _write_final(layout.final(), config.replace(epochs=max(1, trainer.epoch)), trainer,
                           [{"seed": config.seed, **metrics}], curves, export, overlays, echo, final_training=rule)
    run.checkpoint.unlink(missing_ok=True)  # the final model is written: nothing left to resume
    return summary


class FinalTraining:
    """The best trial's state loaded into a Trainer on all resources, or an interrupted final training's state
    when ``--resume`` finds one; then epochs until a deadline, each saved so that a kill loses at most one.

    ``start``, ``last`` and ``best_val`` are ``{"val_miou", "epoch", "model", "val_counts"}`` records: the trial as
    the search left it, the latest epoch, and the epoch that scored highest on validation; ``val_counts``, the
    validation's class counts per image, are kept so that choosing between them after the deadline does not
    evaluate the validation split again (None for a resumed run's epoch, whose counts were not saved)."""

    def __init__(self, config: TrialConfig, data: SegmentationData, state_path: Path | None, checkpoint: Path) -> None:
        self.trainer = trainer = Trainer(config, data, train_splits=("train",), eval_split="val")
        self.state_path, self.checkpoint = state_path, checkpoint
        if state_path is not None:
            trainer.load_state_dict(load_state(state_path))
        _, start_metrics = trainer.evaluate("val")
        self.start = {"val_miou": start_metrics["miou"], "epoch": trainer.epoch,
                      "model": copy.deepcopy(trainer.model.state_dict()), "val_counts": trainer.eval_counts}
        self.last, self.best_val = dict(self.start), dict(self.start)
        self.origin = f"from its trial's epoch {trainer.epoch}" if state_path is not None else "from scratch"
        earlier = _earlier_final_epochs(checkpoint, state_path, config)
        self.resumed = earlier is not None
        self.history: list[dict] = list(earlier["history"]) if earlier is not None else []
        if earlier is not None:  # a resumed run: its final training goes on where the interrupted one stopped
            trainer.load_state_dict(earlier["trainer"])
            self.last.update(val_miou=earlier["val_miou"], epoch=trainer.epoch,
                             model=copy.deepcopy(trainer.model.state_dict()), val_counts=None)
            self.origin += f", resumed at its own epoch {trainer.epoch} ({checkpoint})"

    def train_until(self, deadline: float, step_seconds: float, progress: bool, echo) -> None:
        pace = FinalPace(step_seconds)  # from here: the first epoch's clock starts with the training
        steps = pace.steps_left(deadline, self.trainer.steps_per_epoch)
        if steps < 1:
            if self.state_path is not None or self.resumed:
                return  # past the deadline already: the trial's (or the interrupted run's) state is kept as it is
            steps = self.trainer.steps_per_epoch  # no trial reported in time: an untrained network is no final model
        else:
            self.trainer.stop_at = deadline
        self.trainer.set_remaining_steps(steps)

        def track_until_deadline(row: dict, trainer: Trainer) -> None:
            self.last.update(val_miou=row["val_miou"], epoch=trainer.epoch,
                             model=copy.deepcopy(trainer.model.state_dict()), val_counts=trainer.eval_counts)
            if row["val_miou"] > self.best_val["val_miou"]:
                self.best_val.update(self.last)
            self.history.append({**row, "steps": trainer.last_epoch_steps})
            # per epoch, like a trial: a killed run's --resume continues from here
            save_state({"trainer": trainer.state_dict(), "val_miou": row["val_miou"], "history": self.history,
                        "trial_state": str(self.state_path)}, self.checkpoint)
            pace.record(trainer.last_epoch_steps, trainer.last_epoch_train_seconds)
            steps_left = pace.steps_left(deadline, trainer.steps_per_epoch)
            if steps_left < 1:
                raise StopTraining("the budget's final share is used")
            trainer.set_remaining_steps(steps_left)  # the end from the pace measured so far, after every epoch

        result = fit(self.trainer.config, self.trainer.data, track_until_deadline, progress=progress,
                     trainer=self.trainer)
        if result.status is FitStatus.NAN_LOSS:
            echo(f"final model: continuing stopped ({result.reason}); its last finished epoch competes")

    def best_val_epoch_record(self) -> dict:
        """The epoch with the best validation score, evaluated on the test split for comparison only (not kept)."""
        if self.best_val["epoch"] in (self.start["epoch"], self.last["epoch"]):
            return {}
        self.trainer.model.load_state_dict(self.best_val["model"])
        return {"best_val_epoch": self.best_val["epoch"], "best_val_epoch_val_miou": self.best_val["val_miou"],
                "best_val_epoch_test_miou": self.trainer.evaluate("test")[1]["miou"]}


def _earlier_final_epochs(checkpoint: Path, state_path: Path | None, config: TrialConfig) -> dict | None:
    """What an interrupted final training saved after its last epoch, if it continued this trial with this
    config; otherwise nothing (a stale file from another trial is ignored)."""
    if not checkpoint.is_file():
        return None
    earlier = load_state(checkpoint)

    def recipe(flat: dict) -> dict:  # what trains: not the thread count or the horizon, which the run re-plans
        return {key: value for key, value in flat.items() if key not in ("threads", "epochs")}

    same = earlier.get("trial_state") == str(state_path) and isinstance(earlier.get("trainer"), dict) and \
        recipe(earlier["trainer"].get("config", {})) == recipe(config.to_flat())
    return earlier if same and isinstance(earlier.get("history"), list) else None


class FinalPace:
    """Seconds per optimizer step of the final training, and per epoch besides its steps (validation, checkpoint),
    as measured so far; and how many more steps fit before a deadline.

    Until an epoch is measured, the plan's estimate of a step (its share of validation and checkpoint included)
    stands in. The first epoch is counted only until a second one is measured: it pays for warming up
    (allocations, the loader's first batches, a cold cache) and ran 3.6x slower than the rest in one run, which
    planned the schedule to end at half the budget. The latest ``RECENT`` epochs after it follow a machine that
    slows down or speeds up.
    """

    RECENT = 3

    def __init__(self, estimated_step_seconds: float) -> None:
        if not estimated_step_seconds > 0:
            raise ValueError(f"a step's estimated seconds must be positive, got {estimated_step_seconds}")
        self.estimated_step_seconds = estimated_step_seconds
        self.epochs: list[tuple[int, float, float]] = []  # (steps, training seconds, seconds besides them)
        self.epoch_started = time.time()

    def record(self, steps: int, train_seconds: float) -> None:
        """The epoch that just ended: its steps and the seconds they took."""
        now = time.time()
        self.epochs.append((steps, train_seconds, max(0.0, now - self.epoch_started - train_seconds)))
        self.epoch_started = now

    def steps_left(self, deadline: float, epoch_steps: int) -> int:
        """Optimizer steps that still fit before ``deadline`` in epochs of ``epoch_steps``, each followed by its
        validation and checkpoint; the last epoch may be shorter."""
        seconds = deadline - time.time()
        if not self.epochs:
            return max(0, math.floor(seconds / self.estimated_step_seconds))
        recent = self.epochs[1:][-self.RECENT:] or self.epochs
        step = sum(train for _, train, _ in recent) / max(1, sum(steps for steps, _, _ in recent))
        besides = sum(other for _, _, other in recent) / len(recent)
        epoch_seconds = epoch_steps * step + besides
        whole_epochs = max(0, math.floor(seconds / epoch_seconds))
        rest = seconds - whole_epochs * epoch_seconds - besides
        return whole_epochs * epoch_steps + max(0, math.floor(rest / max(step, 1e-9)))


def _keep_last_unless_trial_clearly_better(trainer: Trainer, start: dict, last: dict) -> tuple[dict, float, dict]:
    """The state to keep (its weights left loaded), the share of validation resamples on which the trial's own
    state beat the last epoch, and both candidates' test metrics (recorded for comparison).

    The last epoch trained longer with its learning rate annealed; it gives way only when the trial beats it
    beyond resampling noise: on a few validation images a 0.02 lead in mIoU is often one image.
    """
    candidates = {"trial": start, "last": last} if last["epoch"] != start["epoch"] else {"trial": start}
    counts, test = {}, {}
    for name, state in candidates.items():
        trainer.model.load_state_dict(state["model"])
        if state["val_counts"] is None:
            trainer.evaluate("val")
            state["val_counts"] = trainer.eval_counts
        counts[name] = state["val_counts"]
        test[name] = trainer.evaluate("test")[1]
    if "last" not in candidates:  # the deadline passed before the first epoch: nothing else to keep
        return start, 1.0, test
    win_rate = bootstrap_win_rate(counts["trial"], counts["last"], trainer.data.independent_groups("val"))
    kept = start if win_rate >= CLEARLY_BETTER_WIN_RATE else last
    trainer.model.load_state_dict(kept["model"])
    return kept, win_rate, test
