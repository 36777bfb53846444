"""End to end with a real local Ray, real Optuna and real files: search, ASHA, resume, retrain, export."""

from __future__ import annotations

import glob
import json
import os
import pickle
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import ray
import torch
import yaml
from PIL import Image
from sqlalchemy.exc import IntegrityError, OperationalError

from searchseg.api import OutputConfig, ResourceConfig, Search, SearchConfig
from searchseg.cli import main
from searchseg.errors import UserError
from searchseg.final.finalize import retrain_best
from searchseg.io_utils import read_table
from searchseg.jobs.pipeline import run_pipeline
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import COST_OBJECTIVES
from searchseg.training.local_trial import run_local_trial
from searchseg.training.metrics import SegmentationMetrics
from searchseg.tuning.search import run_search

pytestmark = pytest.mark.slow

class StudyWatcher(threading.Thread):
    """Opens ``study.db`` with Optuna's API twice a second while a search runs, as optuna-dashboard would, and
    keeps what it saw: (state, duration, trial id) of every trial, per look."""

    def __init__(self, path: Path, name: str) -> None:
        super().__init__(daemon=True)
        self.path, self.name, self.done = path, name, threading.Event()
        self.looks: list[list[tuple]] = []

    def run(self) -> None:
        while not self.done.wait(0.5):
            if not self.path.is_file():
                continue
            try:
                study = optuna.load_study(study_name=self.name, storage=f"sqlite:///{self.path}")
                self.looks.append([(t.state, t.duration, t.user_attrs.get("trial_id")) for t in study.trials])
            except (KeyError, IntegrityError, OperationalError):  # the study's tables are still being created
                continue


@pytest.fixture(scope="module")
def study_watcher(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    watcher = StudyWatcher(results / "e2e" / "study.db", "e2e")
    watcher.results, watcher.printed = results, []
    return watcher


@pytest.fixture(scope="module")
def finished(search_dataset, local_ray, study_watcher):
    dataset = search_dataset
    options = Search(space=str(dataset.parent / "space.yaml"), data=str(dataset),
                     class_map=str(dataset / "classes.yaml"), search=SearchConfig(samples=6),  # sized by hand
                     output=OutputConfig(name="e2e", results_dir=study_watcher.results, verbose=0))
    study_watcher.start()
    try:
        return run_search(options, echo=study_watcher.printed.append)
    finally:
        study_watcher.done.set()
        study_watcher.join()


def test_a_search_sized_by_hand_on_one_validation_folder_says_its_choice_may_be_chance(finished, study_watcher):
    assert any(line.startswith("note: validation has 1 independent group(s)") for line in study_watcher.printed)


def test_result_files_are_complete_and_consistent(finished):
    folder = finished.experiment_dir
    for name in ("trials.csv", "curves.csv", "best_config.yaml", "space.yaml", "run.json"):
        assert (folder / name).is_file(), name
    trials = pd.read_csv(folder / "trials.csv")
    curves = pd.read_csv(folder / "curves.csv")
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"completed", "early_stopped"}
    assert not curves.duplicated(["trial_id", "epoch"]).any()
    assert curves.groupby("trial_id")["epoch"].max().sort_index().tolist() == \
        trials.set_index("trial_id")["epochs_run"].sort_index().tolist()
    run = json.loads((folder / "run.json").read_text())
    assert run["data_fingerprint"] == finished.data.fingerprint and run["settings"]["samples"] == 6
    assert trials["node_id"].notna().all() and (trials["wall_seconds"] > 0).all()
    assert (trials[list(COST_OBJECTIVES)] > 0).all().all()  # measured in each trial before it trained
    assert trials["params_m"].nunique() == 1  # one architecture and encoder in this space
    trial_dirs = list(folder.glob("train_segmentation_*"))
    assert len(trial_dirs) == 6
    for trial_dir in trial_dirs:  # every trial is rebuildable from the files beside its results
        assert TrialConfig.load(trial_dir / "config.yaml").image_size == 64
        assert (trial_dir / "augmentation.json").is_file()
    best = trials["best_val_miou"].max()
    assert finished.best_value == pytest.approx(best)
    # decoded once into the experiment and memory-mapped: the trials received the folder's name, not the arrays
    assert isinstance(finished.data.images, np.memmap) and (folder / "decoded" / "decoded.json").is_file()


def test_asha_stops_the_trials_below_its_rung_cutoff(finished):
    trials = read_table(finished.experiment_dir / "trials.csv")
    curves = read_table(finished.experiment_dir / "curves.csv")
    stopped = set(trials.loc[trials["status"] == "early_stopped", "trial_id"])
    assert (trials.loc[trials["trial_id"].isin(stopped), "epochs_run"] < 3).all()
    assert (trials["epochs_run"] == 3).any()
    # ASHA's rule at the rung (epoch 1, reduction 3): a trial goes on only if it reaches the top third of the
    # values recorded there before it. Whether any is stopped depends on the order the trials arrive in, and
    # two trials reporting within a few seconds of each other may reach the driver in either order (on a loaded
    # machine one report reached it more than 1 s after a later one), so only the reports clearly earlier are
    # counted as recorded before.
    first = curves[curves["epoch"] == 1]
    must_stop = set()
    for row in first.itertuples():
        before = first.loc[first["reported_at"] < row.reported_at - 3.0, "val_miou"]
        if len(before) and row.val_miou < np.percentile(before, 100 * (1 - 1 / 3)):
            must_stop.add(row.trial_id)
    assert must_stop <= stopped
    assert first.loc[first["val_miou"].idxmax(), "trial_id"] not in stopped  # the best at the rung goes on


def test_the_optuna_study_is_current_while_the_search_runs(finished, study_watcher):
    state = optuna.trial.TrialState
    running = [look for look in study_watcher.looks if any(s == state.RUNNING for s, _, _ in look)]
    assert running, "no look at study.db saw a running trial"
    assert all(duration is None for look in running for s, duration, _ in look if s == state.RUNNING)
    ended_while_others_ran = [(s, duration) for look in running for s, duration, _ in look
                              if s in (state.COMPLETE, state.PRUNED)]
    assert ended_while_others_ran and all(d.total_seconds() > 0 for _, d in ended_while_others_ran)
    study = optuna.load_study(study_name="e2e", storage=f"sqlite:///{finished.experiment_dir / 'study.db'}")
    trials = pd.read_csv(finished.experiment_dir / "trials.csv").set_index("trial_id")
    if (trials["status"] == "early_stopped").any():  # ASHA stopped some (3 of 6 in the runs looked at)
        assert state.PRUNED in {s for s, _ in ended_while_others_ran}
    assert study.metric_names == ["val_miou"] and len(study.trials) == len(trials)
    for trial in study.trials:
        status = trials.loc[trial.user_attrs["trial_id"], "status"]
        assert trial.state == {"completed": state.COMPLETE, "early_stopped": state.PRUNED}[status]
        assert trial.duration.total_seconds() > 0 and len(trial.intermediate_values) == \
            trials.loc[trial.user_attrs["trial_id"], "epochs_run"]
        assert {"lr", "loss.ce", "loss.dice"} >= set(trial.params)


def test_best_config_rerun_as_a_local_trial_reproduces_the_trials_curve_exactly(finished, tmp_path):
    config = TrialConfig.load(finished.experiment_dir / "best_config.yaml")
    assert config.threads == 1  # a 1-CPU trial's thread count, recorded: float sums depend on it
    trials = pd.read_csv(finished.experiment_dir / "trials.csv")
    curves = pd.read_csv(finished.experiment_dir / "curves.csv")
    best_id = trials.loc[trials["best_val_miou"].idxmax(), "trial_id"]
    searched = curves[curves["trial_id"] == best_id].set_index("epoch")
    run_local_trial(config, tmp_path / "rerun", progress=False, echo=lambda *_: None)
    rerun = pd.read_csv(tmp_path / "rerun" / "metrics.csv").set_index("epoch")
    for column in ("train_loss", "val_loss", "val_miou"):
        assert rerun.loc[searched.index, column].tolist() == searched[column].tolist(), column
    assert TrialConfig.load(tmp_path / "rerun" / "config.yaml").threads == 1


@pytest.fixture(scope="module")
def retrained(finished):
    return retrain_best(finished.experiment_dir, finished.data, seeds=2, export="onnx", progress=False,
                        echo=lambda *_: None)


def test_retrain_evaluates_on_test_writes_overlays_and_exports_onnx(finished, retrained):
    summary = retrained
    final = finished.experiment_dir / "final"
    metrics = json.loads((final / "metrics.json").read_text())
    assert 0 <= metrics["test_miou"] <= 1 and metrics["test_miou_std"] >= 0
    assert set(metrics["iou_per_class"]) == {"red", "green", "blue"}
    assert len(metrics["confusion_matrix"]) == 3 and len(metrics["seeds"]) == 2
    assert metrics["test_images"] == len(finished.data.splits["test"])
    assert (final / "model.pt").is_file() and (final / "model.onnx").is_file()
    assert len(list((final / "overlays").glob("*.png"))) == len(finished.data.splits["test"])
    export = summary.export  # float32 rounding grows with the logits (a diverged search's pick reaches 1e7)
    assert export["max_abs_logit_difference"] < 1e-3 * max(1.0, export["max_abs_logit"])


def test_predict_writes_masks_at_each_images_size_alike_from_pytorch_and_onnx(finished, retrained, tmp_path):
    data, folder = finished.data, finished.experiment_dir
    test = data.splits["test"]
    images = tmp_path / "new images"
    (images / "test").mkdir(parents=True)
    for index in test:  # the test split's images, as a user's new images
        Image.fromarray(data.images[index]).save(images / "test" / f"{Path(data.names[index]).name}.png")
    mosaic = np.tile(data.images[test[0]], (6, 5, 1))  # 384 x 320: far larger than the 64 px it trained at
    Image.fromarray(mosaic).save(images / "mosaic.jpg")
    Image.fromarray(data.images[test[0]][:40, :56]).save(images / "crop.png")
    masks = {}
    for backend in ("torch", "onnx"):
        out = tmp_path / backend
        main(["predict", str(folder), str(images), "--out", str(out), "--backend", backend, "--quiet"])
        table = pd.read_csv(out / "predictions.csv").set_index("image")
        assert table.loc[str(images / "mosaic.jpg"), "tiles"] > 1
        masks[backend] = {name: np.asarray(Image.open(out / "masks" / f"{name}.png"))
                          for name in ["mosaic", "crop", *(f"test/{Path(data.names[i]).name}" for i in test)]}
    for name, mask in masks["torch"].items():
        source = next(images.glob(f"{name}.*"))
        assert mask.shape == np.asarray(Image.open(source)).shape[:2], name
        assert set(np.unique(mask)) <= {0, 1, 2}, name
        assert (mask != masks["onnx"][name]).mean() < 1e-3, name  # float rounding may flip an exact tie
    # the test images at their own size are predicted as the test split was evaluated: the same mIoU
    predicted = np.stack([masks["torch"][f"test/{Path(data.names[i]).name}"] for i in test])
    metrics = SegmentationMetrics(data.class_names, data.ignore_index, torch.device("cpu"))
    metrics.update(torch.from_numpy(predicted).long(), torch.from_numpy(data.masks[test]).long())
    assert metrics.compute()["miou"] == pytest.approx(retrained.seeds[0]["miou"], abs=1e-3)
    card = json.loads((folder / "final" / "model_card.json").read_text())
    assert card["classes"]["names"] == ["red", "green", "blue"] and card["input_size"]["window"] == 64
    assert card["metrics"]["test_miou"] == retrained.test_miou and card["metrics"]["seeds"] == 2


KILL_SAMPLES = 4  # enough for trials before and after an interruption; each sample is a Ray process start


def _kill_space(dataset: Path) -> str:
    """The search space of the interruption tests: SEARCH_SPACE with fewer, shorter trials."""
    path = dataset.parent / "kill_space.yaml"
    space = yaml.safe_load((dataset.parent / "space.yaml").read_text())
    space["search"].update(samples=KILL_SAMPLES, epochs=2)
    space["fixed"]["cost_runs"] = 0  # latency is not what these tests are about: a second less per trial
    path.write_text(yaml.safe_dump(space))
    return str(path)


def _searcher_study(experiment_dir: Path) -> optuna.Study:
    # Each driver session writes searcher-state-<its start time>.pkl; the latest name is the resumed search's.
    state_file = max(glob.glob(str(experiment_dir / "searcher-state-*.pkl")))
    with open(state_file, "rb") as handle:
        state = pickle.load(handle)
    return state["_ot_study"]


def _location(tmp_path: Path, storage: bool) -> tuple[list[str], Path]:
    """(flags, parent of the experiment): a results folder, or Ray's storage path as a file:// URI, as a cloud
    bucket shared by every node and driver would be reached."""
    if storage:
        return ["--storage", (tmp_path / "shared").as_uri()], tmp_path / "shared"
    return ["--results", str(tmp_path)], tmp_path


def _started(command: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env)


def _wait_for(condition, process: subprocess.Popen, seconds: float = 240) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None and not condition():
        time.sleep(0.5)
    assert process.poll() is None, "the search ended before it could be interrupted"


def _table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["status", "epochs_run"])


@pytest.mark.parametrize("moment", ["trials finished"])
def test_ctrl_c_keeps_the_state_skips_the_final_model_and_the_search_resumes(search_dataset, tmp_path, moment):
    """Ctrl-C in a terminal sends SIGINT to the whole foreground process group. (A Ctrl-C while the first trial
    runs is the SIGTERM case of the next test and the kill moments below.)"""
    dataset = search_dataset
    command = [sys.executable, "-m", "searchseg.run", "--space", _kill_space(dataset), "--samples", str(KILL_SAMPLES),
               "--data", str(dataset), "--class-map", str(dataset / "classes.yaml"), "--name", "interrupted",
               "--results", str(tmp_path), "--concurrency", "1", "--quiet"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    first = _started(command, env)
    trials_csv = tmp_path / "interrupted" / "trials.csv"
    if moment == "trials finished":
        _wait_for(lambda: _table(trials_csv)["status"].isin(["completed", "early_stopped"]).sum() >= 2, first)
    else:
        _wait_for(lambda: (_table(trials_csv)["status"] == "running").any(), first)
    os.killpg(first.pid, signal.SIGINT)
    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 130, stderr[-2000:]
    assert "--resume --name interrupted" in stderr
    assert not (tmp_path / "interrupted" / "final").exists(), "an interrupted search's best was retrained"
    assert not (tmp_path / "interrupted" / "report.html").exists()
    before = read_table(trials_csv)  # trial ids as text: Ray's hex ids are sometimes all digits
    finished_before = before[before["status"].isin(["completed", "early_stopped"])]
    decoded_at = (tmp_path / "interrupted" / "decoded" / "images.npy").stat().st_mtime_ns

    resumed = subprocess.run([*command, "--resume", "--no-retrain"], capture_output=True, text=True, timeout=600,
                             env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    trials = read_table(trials_csv)
    curves = read_table(tmp_path / "interrupted" / "curves.csv")
    assert len(trials) == KILL_SAMPLES and trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"completed", "early_stopped"}
    assert not curves.duplicated(["trial_id", "epoch"]).any()
    assert (tmp_path / "interrupted" / "decoded" / "images.npy").stat().st_mtime_ns == decoded_at, \
        "the resumed run decoded the data again instead of opening its decoded files"
    for _, row in finished_before.iterrows():  # finished trials were not run again
        after = trials.set_index("trial_id").loc[row["trial_id"]]
        assert after["epochs_run"] == row["epochs_run"] and after["wall_seconds"] == row["wall_seconds"]
    told = [t for t in _searcher_study(tmp_path / "interrupted").trials if t.state.is_finished()]
    assert len(told) == KILL_SAMPLES, "the restored searcher lost the trials it had seen before the interruption"
    for name in ("best_config.yaml", "report.html", "study.db"):
        assert (tmp_path / "interrupted" / name).is_file(), name


@pytest.mark.parametrize("stop, moment", [("SIGINT", "final model"), ("SIGTERM", "first trial running")])
def test_ctrl_c_after_the_search_and_sigterm_during_it_stop_the_run_with_one_line(search_dataset, tmp_path, stop,
                                                                                  moment):
    """Ctrl-C reaches the process group; a scheduler's or container's SIGTERM reaches the driver alone."""
    dataset = search_dataset
    command = [sys.executable, "-m", "searchseg.run", "--space", _kill_space(dataset), "--samples", "2",
               "--data", str(dataset), "--class-map", str(dataset / "classes.yaml"), "--name", "stopped",
               "--results", str(tmp_path), "--concurrency", "1", "--quiet", "--retrain-seeds", "30"]
    first = _started(command, {**os.environ, "RAY_ADDRESS": ""})
    trials_csv = tmp_path / "stopped" / "trials.csv"
    if moment == "final model":
        finished = ["completed", "early_stopped"]
        _wait_for(lambda: _table(trials_csv)["status"].isin(finished).sum() == 2, first)
        time.sleep(3)  # Ray Tune has returned; the best is being retrained 30 times
    else:
        _wait_for(lambda: (_table(trials_csv)["status"] == "running").any(), first)
    if stop == "SIGINT":
        os.killpg(first.pid, signal.SIGINT)
    else:
        os.kill(first.pid, signal.SIGTERM)
    _, stderr = first.communicate(timeout=90)
    assert first.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "Stack trace" not in stderr and "interrupted" in stderr, stderr[-2000:]
    assert not (tmp_path / "stopped" / "final" / "metrics.json").exists()
    if moment == "first trial running":
        assert "--resume --name stopped" in stderr


def test_a_driver_killed_twice_at_random_moments_resumes_every_sample_once(search_dataset, tmp_path):
    """SIGKILL of the whole process group as soon as Ray Tune has written tuner.pkl and before it saved a state,
    then again between two reports of the resumed run (at a random delay), then a resume to the end: the tables
    and the study hold each sample once, each trial's epochs once and in order. The experiment lives in a
    file:// storage path, as a bucket shared by every node would be reached (the Ctrl-C tests use a results
    folder). A kill while the first trial runs is the SIGTERM case above."""
    dataset, rng = search_dataset, random.Random(0)
    where, root = _location(tmp_path, storage=True)
    command = [sys.executable, "-m", "searchseg.run", "--space", _kill_space(dataset), "--samples", str(KILL_SAMPLES),
               "--data", str(dataset), "--class-map", str(dataset / "classes.yaml"), "--name", "killed",
               *where, "--concurrency", "1", "--no-retrain", "--quiet"]
    env, folder = {**os.environ, "RAY_ADDRESS": ""}, root / "killed"
    first = _started(command, env)
    _wait_for(lambda: (folder / "tuner.pkl").is_file(), first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    reported_before = _table(folder / "trials.csv")["epochs_run"].fillna(0).sum()
    second = _started([*command, "--resume"], env)
    _wait_for(lambda: _table(folder / "trials.csv")["epochs_run"].fillna(0).sum() > reported_before, second)
    time.sleep(rng.uniform(0, 1.5))
    os.killpg(second.pid, signal.SIGKILL)
    second.wait()

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    trials, curves = pd.read_csv(folder / "trials.csv"), pd.read_csv(folder / "curves.csv")
    assert len(trials) == KILL_SAMPLES and trials["trial_id"].is_unique, trials[["trial_id", "status"]]
    assert set(trials["status"]) <= {"completed", "early_stopped"}
    for trial_id, epochs_run in zip(trials["trial_id"], trials["epochs_run"], strict=True):
        epochs = sorted(curves.loc[curves["trial_id"] == trial_id, "epoch"])
        assert epochs == list(range(1, int(epochs_run) + 1)), (trial_id, epochs)
    told = [t for t in _searcher_study(folder).trials if t.state.is_finished()]
    assert len(told) == KILL_SAMPLES


@pytest.mark.parametrize("name", ["cluster.yaml", "cluster-onprem.yaml"])
def test_cluster_configs_are_valid_for_the_ray_launcher(name):
    import jsonschema

    schema_path = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"
    config = yaml.safe_load((Path(__file__).parents[2] / name).read_text())
    jsonschema.validate(config, json.loads(schema_path.read_text()))
    assert config["max_workers"] >= 1 and any("pip install" in c for c in config["setup_commands"])


def test_a_gpu_request_on_this_processs_own_ray_without_gpus_is_refused_at_once(search_dataset, local_ray, tmp_path):
    """Only a cluster joined with --address is waited for: no node joins the Ray an earlier search started here."""
    search = Search(space=str(search_dataset.parent / "space.yaml"), data=str(search_dataset),
                    class_map=str(search_dataset / "classes.yaml"), search=SearchConfig(samples=2, epochs=1),
                    resources=ResourceConfig(gpus_per_trial=1.0),
                    output=OutputConfig(name="gpu", results_dir=tmp_path, verbose=0))
    started = time.perf_counter()
    with pytest.raises(UserError, match="--gpus-per-trial 1.0 but the cluster has 0 GPUs"):
        run_pipeline(search, echo=lambda *_: None)
    assert time.perf_counter() - started < 60


def test_trackers_log_the_trials_and_the_final_model_offline(search_dataset, local_ray, tmp_path, monkeypatch):
    dataset = search_dataset
    import mlflow

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact folder would be ./mlruns here
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    options = Search(space=str(dataset.parent / "space.yaml"), data=str(dataset),
                     class_map=str(dataset / "classes.yaml"), search=SearchConfig(samples=2, epochs=1),
                     output=OutputConfig(name="tracked", results_dir=tmp_path / "results",
                                         trackers=["tensorboard", "wandb", "mlflow"], verbose=0))
    result = run_pipeline(options, echo=lambda *_: None)
    folder = result.experiment_dir
    assert len(glob.glob(str(folder / "wandb" / "offline-run-*"))) == 2 + 1  # the trials and the final model
    assert len(glob.glob(str(folder / "*" / "events.out.tfevents.*"))) == 2
    assert len(glob.glob(str(folder / "final" / "tensorboard" / "events.out.tfevents.*"))) == 1
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tracked")
    assert experiment.artifact_location == (folder.resolve() / "mlartifacts").as_uri()
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert len(runs) == 3 and all("val_miou" in run.data.metrics for name, run in runs.items() if name != "final")
    final = runs["final"].data
    assert final.metrics["test_miou"] == pytest.approx(result.final.test_miou)
    assert {"test_iou.red", "test_iou.green", "test_iou.blue", "train_loss"} <= set(final.metrics)
    artifacts = {a.path for a in client.list_artifacts(runs["final"].info.run_id)}
    assert {"metrics.json", "model_card.json"} <= artifacts and not (tmp_path / "mlruns").exists()


def test_trials_keep_their_files_where_the_user_kept_ray_from_moving_them(search_dataset, local_ray, tmp_path,
                                                                          monkeypatch):
    """With ``RAY_CHDIR_TO_TRIAL_DIR=0`` a trial runs in its Ray worker's folder: its config and augmentation still
    land in its own folder under the results."""
    monkeypatch.setenv("RAY_CHDIR_TO_TRIAL_DIR", "0")  # propagated to the trials by Ray Tune
    options = Search(space=str(search_dataset.parent / "space.yaml"), data=str(search_dataset),
                     class_map=str(search_dataset / "classes.yaml"), search=SearchConfig(samples=2, epochs=1),
                     output=OutputConfig(name="no_chdir", results_dir=tmp_path / "results", verbose=0))
    folder = run_search(options, echo=lambda *_: None).experiment_dir
    trial_dirs = list(folder.glob("train_segmentation_*"))
    assert len(trial_dirs) == 2
    for trial_dir in trial_dirs:
        assert TrialConfig.load(trial_dir / "config.yaml").image_size == 64
        assert (trial_dir / "augmentation.json").is_file()
