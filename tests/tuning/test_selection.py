import numpy as np
import pytest

from searchseg.layout import CheckpointLayout
from searchseg.training.class_counts import counts_from_confusions
from searchseg.tuning.selection import Candidate, choose_trial, is_start, recent_counts
from tests.conftest import image_counts

STARTS = [{"arch": "unet", "encoder": "resnet18", "lr": 1e-3}, {"arch": "unet", "encoder": "resnet34", "lr": 1e-3}]


START_LEVEL = image_counts([30, 31, 33, 29, 32, 30, 31, 28, 30])
CLEARLY_BETTER = image_counts([44, 45, 46, 43, 45, 44, 46, 45, 44])
ONE_LUCKY_IMAGE = image_counts([29, 31, 32, 29, 31, 30, 31, 28, 50])


def choose(sampled_counts, sampled_score=0.60, start_score=0.55, metric="val_miou", second_start=START_LEVEL,
           groups=None):
    candidates = [Candidate("start18", {**STARTS[0], "loss.ce": 1.0}, start_score, "start18"),
                  Candidate("start34", STARTS[1], start_score + 0.02, "start34"),
                  Candidate("sampled", {"arch": "segformer", "encoder": "mit_b0", "lr": 6e-4}, sampled_score,
                            "sampled")]
    pooled = {"start18": START_LEVEL, "start34": second_start, "sampled": sampled_counts}
    read = []

    def read_counts(candidate):
        read.append(candidate.trial_id)
        return pooled[candidate.checkpoint]

    chosen, record = choose_trial(candidates, STARTS, metric, "max", read_counts, groups)
    return chosen.trial_id, record.to_dict(), read


def test_another_trial_replaces_the_default_only_when_it_beats_it_clearly():
    chosen, record, read = choose(CLEARLY_BETTER)
    assert chosen == "sampled"
    configs = record.pop("configs")
    assert record == {"rule": "default_unless_clearly_beaten", "trial": "sampled", "default_trial": "start18",
                      "win_rates": {"sampled": 1.0, "start34": 0.0}}  # tied counts: never ahead
    assert configs == {"sampled": {"arch": "segformer", "encoder": "mit_b0", "lr": 6e-4},
                       "start18": {**STARTS[0], "loss.ce": 1.0}, "start34": STARTS[1]}  # the trials it names
    assert sorted(read) == ["sampled", "start18", "start34"]  # the default and the two trials above it, once each

    chosen, record, _ = choose(ONE_LUCKY_IMAGE)
    assert chosen == "start18" and 0.3 < record["win_rates"]["sampled"] < 0.95


def test_a_trial_ahead_on_every_crop_of_one_tile_does_not_replace_the_default():
    chosen, record, _ = choose(CLEARLY_BETTER, groups=["Tile 1"] * 9)
    assert chosen == "start18" and record["win_rates"] == {"sampled": 0.0, "start34": 0.0}
    chosen, _, _ = choose(CLEARLY_BETTER, groups=["a", "a", "b", "b", "c", "c", "d", "d", "e"])  # five tiles
    assert chosen == "sampled"


def test_the_second_start_configuration_scoring_higher_within_validations_noise_does_not_replace_the_default():
    chosen, record, _ = choose(START_LEVEL, sampled_score=0.50, second_start=ONE_LUCKY_IMAGE)
    assert chosen == "start18" and list(record["win_rates"]) == ["start34"]  # the sample scored below the default
    chosen, _, _ = choose(START_LEVEL, sampled_score=0.50, second_start=CLEARLY_BETTER)
    assert chosen == "start34"


def test_of_the_trials_that_beat_the_default_clearly_the_best_scoring_one_is_continued():
    chosen, _, _ = choose(CLEARLY_BETTER, second_start=CLEARLY_BETTER)
    assert chosen == "sampled"  # 0.60 against 0.57
    chosen, _, _ = choose(ONE_LUCKY_IMAGE, second_start=CLEARLY_BETTER)
    assert chosen == "start34"  # the best-scoring trial did not beat the default clearly, the next one did


def test_a_default_with_the_best_score_is_continued_without_reading_checkpoints():
    candidates = [Candidate("start18", STARTS[0], 0.6, "start18"), Candidate("start34", STARTS[1], 0.5, "start34")]
    read = []
    chosen, record = choose_trial(candidates, STARTS, "val_miou", "max", lambda c: read.append(c) or START_LEVEL)
    assert chosen.trial_id == "start18" and read == []
    assert record.to_dict() == {"rule": "default_unless_clearly_beaten", "trial": "start18",
                                "default_trial": "start18", "configs": {"start18": STARTS[0]}}


def test_the_best_score_stands_without_a_default_trial_its_counts_or_mIoU():
    lone = Candidate("sampled", {"arch": "fpn", "lr": 2e-3}, 0.4)
    chosen, record = choose_trial([lone], STARTS, "val_miou", "max", lambda c: None)
    assert chosen is lone and record.to_dict() == {"rule": "best_score", "trial": "sampled"}
    assert choose(ONE_LUCKY_IMAGE, metric="val_dice")[0] == "sampled"  # the resampling test counts mIoU
    default_unread = [Candidate("start18", STARTS[0], 0.5, None), Candidate("sampled", {"arch": "fpn"}, 0.6, "s")]
    assert choose_trial(default_unread, STARTS, "val_miou", "max",
                        lambda c: None if c.checkpoint is None else START_LEVEL)[0].trial_id == "sampled"
    assert choose(None, second_start=None)[0] == "start18"  # trials whose checkpoints kept no counts are not taken
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


def test_only_the_two_best_scoring_trials_above_the_default_are_read_and_compared():
    default = Candidate("start18", STARTS[0], 0.50, "start18")
    above = [Candidate(f"s{rank}", {"arch": "fpn", "lr": rank / 1000}, 0.60 - rank / 100, f"s{rank}")
             for rank in range(3)]
    pooled = {"start18": START_LEVEL, "s0": ONE_LUCKY_IMAGE, "s1": ONE_LUCKY_IMAGE, "s2": CLEARLY_BETTER}
    read = []
    chosen, record = choose_trial([default, *above], STARTS, "val_miou", "max",
                                  lambda c: read.append(c.trial_id) or pooled[c.checkpoint])
    assert sorted(read) == ["s0", "s1", "start18"] and set(record.win_rates) == {"s0", "s1"}
    assert chosen is default  # the third, clearly better but ranked below two within noise, is not fetched
