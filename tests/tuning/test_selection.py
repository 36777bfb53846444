import numpy as np
import pytest

from searchseg.layout import CheckpointLayout
from searchseg.training.metrics import counts_from_confusions
from searchseg.tuning.selection import Candidate, TrialChoice, choose_trial, is_start, recent_counts
from tests.conftest import image_counts

STARTS = [{"arch": "unet", "encoder": "resnet18", "lr": 1e-3}, {"arch": "unet", "encoder": "resnet34", "lr": 1e-3}]


START_LEVEL = image_counts([30, 31, 33, 29, 32, 30, 31, 28, 30])
CLEARLY_BETTER = image_counts([44, 45, 46, 43, 45, 44, 46, 45, 44])
ONE_LUCKY_IMAGE = image_counts([29, 31, 32, 29, 31, 30, 31, 28, 50])


def choose(sampled_counts, sampled_score=0.60, start_score=0.55, metric="val_miou"):
    candidates = [Candidate("start18", {**STARTS[0], "loss.ce": 1.0}, start_score, "start18"),
                  Candidate("start34", STARTS[1], start_score - 0.05, "start34"),
                  Candidate("sampled", {"arch": "segformer", "encoder": "mit_b0", "lr": 6e-4}, sampled_score,
                            "sampled")]
    pooled = {"start18": START_LEVEL, "start34": START_LEVEL, "sampled": sampled_counts}
    read = []

    def read_counts(candidate):
        read.append(candidate.trial_id)
        return pooled[candidate.checkpoint]

    chosen, record = choose_trial(candidates, STARTS, metric, "max", read_counts)
    return chosen.trial_id, record.to_dict(), read


def test_a_sampled_trial_replaces_the_start_configuration_only_when_clearly_better():
    chosen, record, read = choose(CLEARLY_BETTER)
    assert chosen == "sampled" and record["sampled_win_rate"] == 1.0
    assert record == {"rule": "start_unless_clearly_beaten", "trial": "sampled", "sampled_trial": "sampled",
                      "start_trial": "start18", "sampled_win_rate": 1.0, "default_trial": "start18",
                      "over_default_win_rate": 1.0}
    assert sorted(read) == ["sampled", "start18"]  # only the two compared trials are read, each once

    chosen, record, _ = choose(ONE_LUCKY_IMAGE)
    assert chosen == "start18" and 0.3 < record["sampled_win_rate"] < 0.95
    assert record["default_trial"] == "start18" and "over_default_win_rate" not in record


def test_a_start_configuration_with_the_best_score_is_taken_without_reading_checkpoints():
    chosen, record, read = choose(CLEARLY_BETTER, sampled_score=0.50)
    assert chosen == "start18" and read == []
    assert record == {"rule": "best_score", "trial": "start18", "default_trial": "start18"}


def test_the_record_says_how_clearly_a_trial_other_than_the_default_beat_it_on_validation():
    default = Candidate("start18", STARTS[0], 0.55, "start18")
    second_start = Candidate("start34", STARTS[1], 0.57, "start34")
    pooled = {"start18": START_LEVEL, "start34": ONE_LUCKY_IMAGE}
    chosen, record = choose_trial([default, second_start], STARTS, "val_miou", "max", lambda c: pooled[c.checkpoint])
    assert chosen is second_start and record.rule == "best_score" and record.default_trial == "start18"
    assert 0.3 < record.over_default_win_rate < 0.95  # one lucky image: within validation's noise
    pooled["start34"] = None  # a checkpoint without counts: no rate, the choice stands
    assert choose_trial([default, second_start], STARTS, "val_miou", "max",
                        lambda c: pooled[c.checkpoint])[1].over_default_win_rate is None
    assert "default_trial" not in choose_trial([second_start], STARTS, "val_miou", "max", lambda c: None)[1].to_dict()


def test_the_best_score_stands_without_start_trials_unreadable_counts_or_another_metric():
    lone = Candidate("sampled", {"arch": "fpn", "lr": 2e-3}, 0.4)
    assert choose_trial([lone], STARTS, "val_miou", "max", lambda c: None)[0] is lone
    assert choose(None)[0] == "sampled"  # a trial whose checkpoint kept no counts is not held back
    assert choose(ONE_LUCKY_IMAGE, metric="val_dice")[0] == "sampled"  # the resampling test counts mIoU
    with pytest.raises(ValueError, match="no trial"):
        choose_trial([], STARTS, "val_miou", "max", lambda c: None)


def test_loss_is_ranked_downwards():
    low, high = Candidate("low", {"arch": "fpn"}, 0.2), Candidate("high", {"arch": "fpn"}, 0.9)
    assert choose_trial([high, low], [], "val_loss", "min", lambda c: None)[0] is low


def test_a_start_configuration_is_recognised_by_its_listed_keys_only():
    assert is_start({"arch": "unet", "encoder": "resnet34", "lr": 1e-3, "loss.dice": 0.5}, STARTS)
    assert not is_start({"arch": "unet", "encoder": "resnet34", "lr": 2e-3}, STARTS)
    assert not is_start({"arch": "unet"}, STARTS)


def test_recent_counts_are_summed_over_the_saved_epochs(tmp_path):
    assert recent_counts(tmp_path) is None
    np.save(CheckpointLayout(tmp_path).counts, np.stack([START_LEVEL, CLEARLY_BETTER]))
    assert (recent_counts(tmp_path) == START_LEVEL + CLEARLY_BETTER).all()


def test_a_checkpoint_written_before_the_counts_is_read_from_its_confusion_matrices(tmp_path):
    confusions = np.array([[[[50, 0], [20, 30]], [[48, 2], [10, 40]]]])  # 1 epoch, 2 images, 2 classes
    np.save(CheckpointLayout(tmp_path).confusions, confusions)
    assert recent_counts(tmp_path).tolist() == [[[50, 30], [50, 50], [70, 30]], [[48, 40], [50, 50], [58, 42]]]
    assert (recent_counts(tmp_path) == counts_from_confusions(confusions).sum(0)).all()


def test_what_the_search_added_gives_a_rate_once_when_the_line_before_gave_it():
    from searchseg.tuning.search import _gain_over_default

    default, sampled = {"arch": "unet", "encoder": "resnet18"}, {"arch": "fpn", "encoder": "resnet18"}
    over_start = TrialChoice("start_unless_clearly_beaten", "s", "s", "d", 0.97, "d", 0.97)
    assert _gain_over_default(over_start, sampled, default) == \
        "what the search added: arch fpn instead of the default unet/resnet18"
    over_other_start = TrialChoice("start_unless_clearly_beaten", "s", "s", "r34", 0.97, "d", 0.6)
    assert "ahead on 60% of validation resamples" in _gain_over_default(over_other_start, sampled, default)
