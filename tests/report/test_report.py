"""Report views as tables on a synthetic results folder; the Optuna export; the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml

from searchseg.report import tables as T
from searchseg.report.__main__ import main as report_main
from searchseg.report.experiment import load_experiment
from searchseg.report.html import render_report
from searchseg.spaces.space import space_from_mapping
from searchseg.tracking.optuna_study import StudyWriter, build_study, export_study
from tests.conftest import save

SPACE = """
search: {samples: 8, epochs: 4, grace_period: 1, reduction_factor: 2}
params:
  arch: {choice: [unet, fpn]}
  encoder:
    by: arch
    cases:
      fpn: {choice: [resnet18]}
      default: {choice: [resnet18, mobilenet_v2]}
  lr: {loguniform: [1.0e-4, 1.0e-2]}
  loss.ce: {uniform: [0.1, 1.0]}
  loss.dice: {choice: [0.0, 1.0]}
"""
# trial_id, status, arch, encoder, lr, loss.ce, loss.dice, best, epochs
TRIALS = [
    ("t0", "completed", "unet", "resnet18", 1e-3, 0.5, 1.0, 0.60, 4),
    ("t1", "early_stopped", "fpn", "resnet18", 5e-3, 0.9, 0.0, 0.30, 1),
    ("t2", "completed", "unet", "mobilenet_v2", 3e-4, 0.2, 1.0, 0.70, 4),
    ("t3", "nan_loss", "fpn", "resnet18", 9e-3, 0.3, 0.0, 0.0, 1),
    ("t4", "early_stopped", "unet", "resnet18", 2e-4, 0.8, 0.0, 0.40, 2),
    ("t5", "error", "fpn", "resnet18", 1e-4, 0.6, 1.0, np.nan, 0),
    ("t6", "running", "unet", "mobilenet_v2", 6e-4, 0.4, 0.0, 0.50, 2),
]


def make_experiment(root, finished=True, final=True):
    root.mkdir(parents=True)
    (root / "space.yaml").write_text(SPACE)
    (root / "run.json").write_text(json.dumps({"space": "synthetic", "settings": {
        "samples": 8, "epochs": 4, "grace_period": 1, "reduction_factor": 2, "metric": "val_miou", "mode": "max"}}))
    rows, curves = [], []
    for tid, status, arch, encoder, lr, ce, dice, best, epochs in TRIALS:
        rows.append({"trial_id": tid, "status": status, "arch": arch, "encoder": encoder, "lr": lr, "loss.ce": ce,
                     "loss.dice": dice, "best_val_miou": best, "last_val_miou": best, "epochs_run": epochs,
                     "stop_reason": "loss became nan" if status == "nan_loss" else "",
                     "wall_seconds": 10.0 * epochs, "latency_ms": 20.0 if arch == "fpn" else 30.0 - 1000 * lr})
        curves += [{"trial_id": tid, "epoch": e, "val_miou": best * e / max(epochs, 1), "train_loss": 1.0 / e}
                   for e in range(1, epochs + 1) if status != "nan_loss"]
    if not finished:
        rows = rows[:3]
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    pd.DataFrame(curves).to_csv(root / "curves.csv", index=False)
    if finished:
        (root / "best_config.yaml").write_text("arch: unet\n")
    if final:
        (root / "final" / "overlays").mkdir(parents=True)
        (root / "final" / "metrics.json").write_text(json.dumps({
            "test_miou": 0.65, "test_miou_std": 0.02, "mean_dice": 0.7, "mean_pixel_accuracy": 0.9,
            "iou_per_class": {"road": 0.5, "water": 0.8}, "dice_per_class": {"road": 0.66, "water": 0.89},
            "class_names": ["road", "water"], "confusion_matrix": [[30, 10], [5, 55]]}))
        pd.DataFrame([{"seed": 0, "epoch": e, "train_loss": 1 / e, "test_loss": 1.2 / e} for e in (1, 2, 3)]).to_csv(
            root / "final" / "curves.csv", index=False)
        save(root / "final" / "overlays" / "tile.png", np.zeros((8, 24, 3), np.uint8))
    return root


def load_space_text(text: str):
    return space_from_mapping(yaml.safe_load(text), "synthetic", Path("space.yaml"), text, check_names=False)


@pytest.fixture
def experiment(tmp_path):
    return load_experiment(make_experiment(tmp_path / "exp"))


def test_summary(experiment):
    summary = T.summary(experiment)
    assert summary["best_value"] == pytest.approx(0.70) and summary["best_trial"] == "t2"
    assert summary["best_params"]["encoder"] == "mobilenet_v2"
    assert summary["trials_by_status"] == {"completed": 2, "early_stopped": 2, "nan_loss": 1, "error": 1,
                                           "running": 1}
    assert summary["trial_epochs"] == 4 + 1 + 4 + 2 + 2  # curve rows: the NaN trial reported none
    assert summary["max_trial_epochs"] == 32 and summary["test_miou"] == 0.65
    assert summary["running"]  # t6 is still running
    assert "final model" not in summary  # retrained from scratch: no continued trial to describe


def test_a_planned_runs_final_model_says_which_trial_it_continued_and_what_the_search_added():
    def rows(choice: dict) -> dict:
        return T.final_training_rows({"final_training": {"rule": "continue_best", "start_epoch": 12, "epochs_run": 51,
                                                         "kept_epoch": 51, "trial_choice": choice}})

    continued = rows({"rule": "best_score", "trial": "a", "default_trial": "a"})
    assert continued == {"final model": "trial a, trained from epoch 12 to 51; kept epoch 51",
                         "what the search added": "nothing; the default, trial a (the first start configuration), is "
                                                  "continued: no trial beat it clearly on validation"}
    configs = {"a": {"arch": "unet", "encoder": "resnet18", "lr": 1e-3},
               "b": {"arch": "unet", "encoder": "resnet34", "lr": 1e-3}}
    other = rows({"rule": "default_unless_clearly_beaten", "trial": "b", "default_trial": "a",
                  "win_rates": {"c": 0.99, "b": 0.97}, "configs": configs})
    assert other["final model"] == "trial b (unet/resnet34 lr 0.001), trained from epoch 12 to 51; kept epoch 51"
    assert other["what the search added"] == "encoder resnet34 instead of the default unet/resnet18, ahead of it " \
                                             "on 97% of validation resamples"  # the words the run printed
    older = rows({"rule": "best_score", "trial": "b", "default_trial": "a", "over_default_win_rate": 0.08})
    assert older["what the search added"] == "trial b instead of the default trial a, ahead of it on 8% of " \
                                             "validation resamples"  # before win_rates and configs were kept
    assert "what the search added" not in rows({"rule": "best_score", "trial": "b"})  # the default never reported
    assert T.final_training_rows({"final_training": {"rule": "retrain_best"}}) == {}
    assert rows({}) == {"final model": "the default configuration, no search, trained from epoch 12 to 51; kept "
                                       "epoch 51"}  # --samples 0
    reason = "validation has 1 independent group(s) of images"
    assert T.final_training_rows({"final_training": {"rule": "continue_best", "start_epoch": 0, "epochs_run": 19,
                                                     "kept_epoch": 19}}, reason) == \
        {"final model": f"the default configuration, no search ({reason}), trained from epoch 0 to 19; kept epoch 19"}


def test_history_counts_only_finished_trials(experiment):
    history = T.history_table(experiment)
    assert history["number"].tolist() == list(range(7))
    assert history["best_so_far"].tolist()[:5] == [0.6, 0.6, 0.7, 0.7, 0.7]
    assert history["best_so_far"].is_monotonic_increasing


def test_parallel_table_holds_finished_trials_only(experiment):
    table = T.parallel_table(experiment)
    assert sorted(table["trial_id"]) == ["t0", "t1", "t2", "t4"]
    assert {"arch", "encoder", "lr", "loss.ce", "loss.dice", "value"} <= set(table.columns)


def test_importance_over_finished_trials(experiment):
    table = T.importance_table(experiment, build_study(experiment))
    assert len(table) >= 1 and table["importance"].between(0, 1).all()


def test_curves_mark_status_and_rungs(experiment):
    curves = T.curves_table(experiment)
    assert set(curves[curves["trial_id"] == "t1"]["status"]) == {"early_stopped"}
    assert set(curves[curves["trial_id"] == "t6"]["status"]) == {"running"}
    assert T.rung_epochs(experiment) == [1, 2]


def test_pair_heatmaps(experiment):
    assert T.heatmap_pairs(experiment) == [("arch", "encoder"), ("arch", "dominant_loss")]
    table = T.pair_heatmap_table(experiment, "arch", "encoder")
    assert table.loc["unet", "mobilenet_v2"] == pytest.approx(0.70)
    assert table.loc["fpn", "resnet18"] == pytest.approx(0.30)  # the NaN and error trials do not count
    losses = T.pair_heatmap_table(experiment, "arch", "dominant_loss")
    assert losses.loc["unet", "dice"] == pytest.approx(0.70) and losses.loc["unet", "ce"] == pytest.approx(0.40)


def test_final_model_tables(experiment):
    assert T.per_class_table(experiment).set_index("class")["iou"].to_dict() == {"road": 0.5, "water": 0.8}
    confusion = T.confusion_table(experiment)
    assert confusion.loc["road", "road"] == pytest.approx(0.75)
    assert np.allclose(confusion.sum(axis=1), 1.0)
    assert T.final_curves_table(experiment)["test_loss"].tolist() == pytest.approx([1.2, 0.6, 0.4])


def test_report_without_retraining_and_while_running(tmp_path):
    experiment = load_experiment(make_experiment(tmp_path / "live", finished=False, final=False))
    assert experiment.running
    page = render_report(experiment, refresh_seconds=5)
    assert "http-equiv='refresh'" in page and "Not retrained yet" in page


def test_optuna_export_holds_every_trial_with_its_state_values_and_readable_names(experiment):
    path = export_study(experiment)
    study = optuna.load_study(study_name="exp", storage=f"sqlite:///{path}")
    assert study.metric_names == ["val_miou"] and len(study.trials) == 7
    by_id = {t.user_attrs["trial_id"]: t for t in study.trials}
    state = optuna.trial.TrialState
    assert by_id["t0"].intermediate_values == {e: pytest.approx(0.6 * e / 4) for e in (1, 2, 3, 4)}
    assert by_id["t0"].state == state.COMPLETE and by_id["t0"].value == pytest.approx(0.6)
    assert by_id["t1"].state == by_id["t4"].state == state.PRUNED and by_id["t1"].value is None
    assert by_id["t4"].intermediate_values == {1: pytest.approx(0.2), 2: pytest.approx(0.4)}  # kept when pruned
    assert by_id["t3"].state == state.FAIL and by_id["t3"].user_attrs["stop_reason"] == "loss became nan"
    assert by_id["t6"].state == state.RUNNING and by_id["t6"].datetime_complete is None
    assert by_id["t2"].params["encoder"] == "mobilenet_v2" and by_id["t1"].params["encoder"] == "resnet18"


def test_the_study_follows_the_tables_as_they_grow(tmp_path):
    space = load_space_text(SPACE)
    writer = StudyWriter(tmp_path / "study.db", "live", space, "val_miou", "max")
    started = time.time() - 30
    row = {"trial_id": "a", "status": "running", "arch": "fpn", "encoder": "resnet18", "lr": 1e-3, "loss.ce": 0.5,
           "loss.dice": 0.0, "best_val_miou": 0.2, "started_at": started}
    trials = pd.DataFrame([row])
    curves = pd.DataFrame([{"trial_id": "a", "epoch": 1, "val_miou": 0.2}])
    writer.sync(trials, curves)
    reader = optuna.load_study(study_name="live", storage=f"sqlite:///{tmp_path / 'study.db'}")
    (trial,) = reader.trials
    assert trial.state == optuna.trial.TrialState.RUNNING and trial.intermediate_values == {1: 0.2}
    assert trial.datetime_start.timestamp() == pytest.approx(started, abs=1e-3)
    curves = pd.concat([curves, pd.DataFrame([{"trial_id": "a", "epoch": 2, "val_miou": 0.25}])])
    trials = pd.DataFrame([{**row, "status": "early_stopped", "best_val_miou": 0.25, "stop_reason": "rung 2"}])
    writer.sync(trials, curves)
    writer.sync(trials, curves)  # nothing new: nothing written twice
    (trial,) = reader.trials
    assert trial.state == optuna.trial.TrialState.PRUNED and trial.intermediate_values == {1: 0.2, 2: 0.25}
    assert trial.duration.total_seconds() >= 30 and trial.user_attrs["stop_reason"] == "rung 2"
    lost = {**row, "trial_id": "b"}
    writer.sync(pd.DataFrame([lost]), curves.iloc[:0])
    writer.sync(trials, curves, final=True)  # b was dropped from the tables: its driver was killed
    assert {t.user_attrs["trial_id"]: t.state for t in reader.trials}["b"] == optuna.trial.TrialState.FAIL


def test_an_export_written_before_live_studies_is_written_anew(experiment):
    path = experiment.path / "study.db"
    old = optuna.create_study(storage=f"sqlite:///{path}", study_name="exp")
    old.add_trial(optuna.trial.create_trial(value=1.0))
    export_study(experiment)
    assert len(optuna.load_study(study_name="exp", storage=f"sqlite:///{path}").trials) == 7


def test_report_cli_writes_report_study_and_pareto_front(tmp_path, capsys):
    root = make_experiment(tmp_path / "cli")
    report_main([str(root)])
    out = capsys.readouterr().out
    assert (root / "report.html").is_file() and (root / "study.db").is_file()
    front = pd.read_csv(root / "pareto.csv")  # t1 0.30 at 20 ms, t2 0.70 at 29.7 ms; t0 0.60 at 29 ms ties t2's
    assert front["trial_id"].tolist() == ["t1", "t2"]  # latency within 10 % and is worse; t4 is slower and worse
    assert "Accuracy against latency" in (root / "report.html").read_text()
    assert "optuna-dashboard sqlite:///" in out
    page = (root / "report.html").read_text()
    assert page.count("class=\"plotly-graph-div\"") >= 7 and "data:image/png;base64," in page


def test_report_cli_refuses_a_folder_that_is_not_an_experiment(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(tmp_path)])
    assert exit_info.value.code == 2 and "is not a searchseg experiment" in capsys.readouterr().err


HEAVY = ("torch", "ray", "segmentation_models_pytorch", "albumentations")


def imported_after(code: str) -> list[str]:
    """Which heavy packages a fresh interpreter holds after running ``code``."""
    probe = f"import sys\n{code}\nprint('heavy:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()[-1].split()[1:]


def test_writing_a_report_imports_neither_torch_nor_ray(tmp_path):
    make_experiment(tmp_path / "exp")
    assert imported_after(f"from searchseg.report.__main__ import main\nmain([{str(tmp_path / 'exp')!r}])") == []
    assert (tmp_path / "exp" / "report.html").is_file() and (tmp_path / "exp" / "study.db").is_file()


def test_the_data_check_imports_neither_torch_nor_ray(tmp_path):
    data = tmp_path / "data"
    for index in range(3):
        save(data / "images" / f"{index}.png", np.zeros((8, 8, 3), np.uint8))
        save(data / "masks" / f"{index}.png", np.zeros((8, 8), np.uint8))
    code = f"from searchseg.check import main\ntry:\n    main([{str(data)!r}])\nexcept SystemExit:\n    pass"
    assert imported_after(code) == []


def test_a_numeric_choice_is_drawn_on_a_number_axis_with_short_ticks():
    from searchseg.report.figures import parallel_figure

    table = pd.DataFrame({"trial_id": ["a", "b", "c"], "loss.dice": [0.1 + 0.2, 0.5, 0.1 + 0.2],
                          "arch": ["unet", "fpn", "unet"], "value": [0.3, 0.4, 0.5]})
    dice, arch, _ = parallel_figure(table, "val_miou").data[0].dimensions
    assert list(dice.values) == [0.1 + 0.2, 0.5, 0.1 + 0.2]  # positions are the values themselves
    assert list(dice.ticktext) == ["0.3", "0.5"]  # not 0.30000000000000004
    assert list(arch.ticktext) == ["fpn", "unet"] and list(arch.values) == [1, 0, 1]


def test_the_overlay_gallery_has_a_legend_of_the_colours_it_draws():
    from searchseg.report.html import _class_legend

    legend = _class_legend({"class_names": ["road", "sky"], "class_colors": [[255, 0, 0], [0, 0, 255]]})
    assert "background:#FF0000'></span>road" in legend and "background:#0000FF'></span>sky" in legend
    assert "background:#FFFFFF'></span>ignored" in legend
    # an experiment from before colours were recorded: the fixed palette its overlays were drawn with
    assert "background:#000000'></span>a" in _class_legend({"class_names": ["a", "b"]})


def test_overlays_are_captioned_with_their_item_path(tmp_path):
    root = make_experiment(tmp_path / "paths")
    for tile in ("Tile 1", "Tile 2"):  # the same file name in two folders, as in the Dubai tiles
        save(root / "final" / "overlays" / f"{tile}__images__image_part_001.png", np.zeros((8, 24, 3), np.uint8))
    page = render_report(load_experiment(root))
    assert "Tile 1/images/image_part_001: image" in page and "Tile 2/images/image_part_001: image" in page


def test_a_symlinked_overlay_is_not_embedded_in_the_self_contained_report(tmp_path):
    import base64

    root = make_experiment(tmp_path / "linked")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG private key material")
    (root / "final" / "overlays" / "stolen.png").symlink_to(secret)
    page = render_report(load_experiment(root))
    assert "stolen" not in page and base64.b64encode(secret.read_bytes()).decode() not in page
    assert "tile: image" in page  # the real overlay is still there


def test_parallel_coordinates_keep_every_trial_when_a_conditional_parameter_is_missing():
    """plotly drops a line with a missing value: a conditional parameter once left 1 line of 10 trials."""
    from searchseg.report.figures import parallel_figure

    table = pd.DataFrame({
        "trial_id": list("abcdef"), "arch": ["unet", "fpn"] * 3, "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2],
        "focal_gamma": [np.nan, 2.0, np.nan, np.nan, 3.0, np.nan],  # a choice, set only with the focal loss
        "tversky_alpha": [0.1, np.nan, 0.3, 0.45, np.nan, 0.7],  # a range, set only with the Tversky loss
        "value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]})
    dimensions = parallel_figure(table, "val_miou").data[0].dimensions
    for dimension in dimensions:
        values = np.asarray(dimension.values, dtype=float)
        assert len(values) == 6 and not np.isnan(values).any(), dimension.label
    for label in ("focal_gamma", "tversky_alpha"):
        dimension = next(d for d in dimensions if d.label == label)
        assert dimension.ticktext[0] == "n/a" and min(dimension.values) == dimension.tickvals[0]
