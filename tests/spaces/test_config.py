import pytest

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig


def test_flat_round_trip_through_yaml(tmp_path):
    config = TrialConfig.from_flat({"arch": "fpn", "lr": "3e-4", "loss.dice": 0.5, "loss.ce": 0.5, "amp": "false"})
    assert config.lr == pytest.approx(3e-4) and config.amp is False
    assert config.to_flat()["loss.dice"] == 0.5
    config.save(tmp_path / "config.yaml")
    assert TrialConfig.load(tmp_path / "config.yaml") == config


def test_unknown_key_lists_valid_keys():
    with pytest.raises(UserError, match=r"unknown config key 'learning_rate'; valid keys: .*\blr\b"):
        TrialConfig.from_flat({"learning_rate": 0.1})


@pytest.mark.parametrize("flat, fragment", [
    ({"lr": 0}, "below its range"),
    ({"epochs": 2.5}, "not a valid int"),
    ({"val_fraction": 1.5}, "above its range"),
    ({"loss.ce": -1}, "must be a finite number >= 0"),
    ({"loss.ce": 0}, "all zero"),
    ({"batch_size": "eight"}, "not a valid int"),
])
def test_bad_values_fail_naming_the_key(flat, fragment):
    with pytest.raises(UserError, match=fragment):
        TrialConfig.from_flat(flat)


def test_replace_keeps_other_values():
    config = TrialConfig(lr=0.01).replace(epochs=3)
    assert config.lr == 0.01 and config.epochs == 3
