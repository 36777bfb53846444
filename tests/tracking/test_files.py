"""The result tables a killed driver leaves behind are read back by the resumed one."""

from __future__ import annotations

import os

import pandas as pd

from searchseg.tracking.files import load_trials
from searchseg.tracking.writer import ResultsWriter

LEFT_BY_A_KILLED_DRIVER = (
    "trial_id,status,lr,best_val_miou,last_val_miou,epochs_run,stop_reason,node_id,node_ip,wall_seconds,"
    "resumed_from_epoch\n"
    "a1,completed,0.001,0.41,0.40,3,,n1,10.0.0.1,12.5,0\n"
    "a2,running,0.002,,,,,,,,\n"
)


def test_a_row_with_empty_cells_loads_and_a_trial_ray_never_saved_is_dropped(tmp_path):
    (tmp_path / "trials.csv").write_text(LEFT_BY_A_KILLED_DRIVER)
    writer = ResultsWriter(tmp_path, ["lr"], max_epochs=3, metric="val_miou", mode="max")
    writer.setup()  # raised TypeError ('>' between float and str) on the empty cells before
    assert writer.trials["a2"]["best_val_miou"] is None
    writer.on_experiment_end(trials=[])  # the resumed search knows neither: only the unfinished one goes
    trials = load_trials(tmp_path)
    assert list(trials["trial_id"]) == ["a1"]
    assert trials.loc[0, "best_val_miou"] == 0.41 and trials.loc[0, "status"] == "completed"


def test_tables_are_readable_by_the_team(tmp_path):
    writer = ResultsWriter(tmp_path, ["lr"], max_epochs=3, metric="val_miou", mode="max")
    writer.on_experiment_end(trials=[])
    umask = os.umask(0o022)
    os.umask(umask)
    assert (tmp_path / "trials.csv").stat().st_mode & 0o777 == 0o666 & ~umask  # 0644 under umask 022, not 0600
    assert pd.read_csv(tmp_path / "trials.csv").empty


def test_a_trial_id_of_digits_only_stays_text_in_every_table(tmp_path):
    (tmp_path / "trials.csv").write_text("trial_id,status\n42574839,completed\n")
    (tmp_path / "curves.csv").write_text("trial_id,epoch,val_miou\n42574839,1,0.5\n")
    writer = ResultsWriter(tmp_path, [], max_epochs=1, metric="val_miou", mode="max")
    writer.setup()  # reads both back as a resumed driver does
    assert list(writer.trials) == ["42574839"] and list(writer.curves) == [("42574839", 1)]
    assert load_trials(tmp_path)["trial_id"].tolist() == ["42574839"]
