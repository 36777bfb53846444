import numpy as np
import pytest

from searchseg.layout import CheckpointLayout
from searchseg.tuning.selection import Candidate, choose_trial, is_start, recent_confusions

STARTS = [{"arch": "unet", "encoder": "resnet18", "lr": 1e-3}, {"arch": "unet", "encoder": "resnet34", "lr": 1e-3}]


def image_confusions(hits: list[int], pixels: int = 100) -> np.ndarray:
    """Binary images whose foreground (half the pixels) is found ``hits[i]`` times out of ``pixels // 2``."""
    half = pixels // 2
    return np.array([[[half, 0], [half - hit, hit]] for hit in hits])


START_LEVEL = image_confusions([30, 31, 33, 29, 32, 30, 31, 28, 30])
CLEARLY_BETTER = image_confusions([44, 45, 46, 43, 45, 44, 46, 45, 44])
ONE_LUCKY_IMAGE = image_confusions([29, 31, 32, 29, 31, 30, 31, 28, 50])


def choose(sampled_confusions, sampled_score=0.60, start_score=0.55, metric="val_miou"):
    candidates = [Candidate("start18", {**STARTS[0], "loss.ce": 1.0}, start_score, "start18"),
                  Candidate("start34", STARTS[1], start_score - 0.05, "start34"),
                  Candidate("sampled", {"arch": "segformer", "encoder": "mit_b0", "lr": 6e-4}, sampled_score,
                            "sampled")]
    pooled = {"start18": START_LEVEL, "start34": START_LEVEL, "sampled": sampled_confusions}
    read = []

    def read_confusions(candidate):
        read.append(candidate.trial_id)
        return pooled[candidate.checkpoint]

    chosen, record = choose_trial(candidates, STARTS, metric, "max", read_confusions)
    return chosen.trial_id, record.to_dict(), read


def test_a_sampled_trial_replaces_the_start_configuration_only_when_clearly_better():
    chosen, record, read = choose(CLEARLY_BETTER)
    assert chosen == "sampled" and record["sampled_win_rate"] == 1.0
    assert record == {"rule": "start_unless_clearly_beaten", "trial": "sampled", "sampled_trial": "sampled",
                      "start_trial": "start18", "sampled_win_rate": 1.0}
    assert sorted(read) == ["sampled", "start18"]  # only the two compared trials are read

    chosen, record, _ = choose(ONE_LUCKY_IMAGE)
    assert chosen == "start18" and 0.3 < record["sampled_win_rate"] < 0.95


def test_a_start_configuration_with_the_best_score_is_taken_without_reading_checkpoints():
    chosen, record, read = choose(CLEARLY_BETTER, sampled_score=0.50)
    assert chosen == "start18" and record == {"rule": "best_score", "trial": "start18"} and read == []


def test_the_best_score_stands_without_start_trials_unreadable_confusions_or_another_metric():
    lone = Candidate("sampled", {"arch": "fpn", "lr": 2e-3}, 0.4)
    assert choose_trial([lone], STARTS, "val_miou", "max", lambda c: None)[0] is lone
    assert choose(None)[0] == "sampled"  # a trial whose checkpoint kept no confusions is not held back
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


def test_recent_confusions_are_summed_over_the_saved_epochs(tmp_path):
    assert recent_confusions(tmp_path) is None
    np.save(CheckpointLayout(tmp_path).confusions, np.stack([START_LEVEL, CLEARLY_BETTER]))
    assert (recent_confusions(tmp_path) == START_LEVEL + CLEARLY_BETTER).all()
