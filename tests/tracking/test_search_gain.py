from searchseg.tracking.search_gain import search_gain
from searchseg.tuning.selection import TrialChoice

CONFIGS = {"d": {"arch": "unet", "encoder": "resnet18", "lr": 1e-3},
           "r34": {"arch": "unet", "encoder": "resnet34", "lr": 1e-3},
           "s": {"arch": "fpn", "encoder": "resnet18", "lr": 1e-3}}
POOLED = "last 3 evaluations pooled; 95% would be clear"


def gain(*args, **kwargs) -> str | None:
    return search_gain(TrialChoice(*args, configs=CONFIGS, **kwargs).to_dict(), POOLED)


def test_a_replaced_default_names_the_keys_that_changed_and_how_sure_validation_is_of_it():
    assert gain("default_unless_clearly_beaten", "s", "d", {"s": 0.97, "r34": 0.6}) == (
        "arch fpn instead of the default unet/resnet18, ahead of it on 97% of validation resamples (last 3 "
        "evaluations pooled; 95% would be clear)")
    assert gain("best_score", "s", "d") == "arch fpn instead of the default unet/resnet18"  # no counts to resample


def test_a_continued_default_says_how_close_the_higher_scoring_trials_came():
    assert gain("default_unless_clearly_beaten", "d", "d", {"r34": 0.6}) == (
        "nothing; the default, unet/resnet18 (the first start configuration), is continued: no trial beat it clearly "
        "on validation (higher-scoring trials ahead of it on resamples: unet/resnet34 lr 0.001 on 60%; last 3 "
        "evaluations pooled; 95% would be clear)")
    assert gain("default_unless_clearly_beaten", "d", "d") == (
        "nothing; the default, unet/resnet18 (the first start configuration), is continued: no trial beat it clearly "
        "on validation")


def test_nothing_is_said_when_the_default_never_reported():
    assert search_gain(TrialChoice("best_score", "s").to_dict()) is None
