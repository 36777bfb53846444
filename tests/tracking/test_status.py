import pandas as pd
import pytest

from searchseg.tracking.status import FAILED, FINISHED, Direction, TrialStatus, finished_status


def test_a_status_read_back_from_a_table_equals_its_member():
    column = pd.Series(["completed", "running", "nan_loss"])
    assert (column == TrialStatus.RUNNING).tolist() == [False, True, False]
    assert column.isin(FINISHED).tolist() == [True, False, False]
    assert column.isin(FAILED).tolist() == [False, False, True]
    assert f"{TrialStatus.TIME_BUDGET}" == "time_budget" and not FINISHED & FAILED


def test_a_trial_that_did_not_fail_completed_or_was_stopped_early():
    assert finished_status(9, 9) is TrialStatus.COMPLETED
    assert finished_status(3, 9) is TrialStatus.EARLY_STOPPED


@pytest.mark.parametrize(("mode", "better", "best", "running_best", "index", "optuna"), [
    ("max", True, 0.7, [0.5, 0.7, 0.7], 1, "maximize"),
    ("min", False, 0.5, [0.5, 0.5, 0.5], 0, "minimize"),
])
def test_a_direction_knows_which_value_is_better(mode, better, best, running_best, index, optuna):
    direction = Direction(mode)
    values = pd.Series([0.5, 0.7, 0.6])
    assert direction.is_better(0.7, 0.5) is better
    assert direction.best([0.5, 0.7]) == best == direction.best(pd.Series([0.5, 0.7]))
    assert direction.best_so_far(values).tolist() == running_best
    assert direction.best_index(values) == index and direction.optuna == optuna
    with pytest.raises(ValueError):
        Direction("maximize")
