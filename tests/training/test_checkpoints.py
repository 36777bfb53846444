"""Checkpoints round-trip, and a crafted one cannot run code when a trial or a search resumes from it."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from searchseg.errors import UserError
from searchseg.spaces.config import TrialConfig
from searchseg.training.checkpoints import load_state, save_state
from searchseg.training.engine import Trainer
from searchseg.trial import main
from tests.conftest import tiny_data


class Payload:
    """What an attacker pickles: unpickling calls ``os.system`` with their command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted_checkpoint(path: Path, marker: Path) -> Path:
    torch.save({"model": {}, "epoch": 1, "config": Payload(marker)}, path)
    return path


def test_a_trainer_state_round_trips(tmp_path):
    trainer = Trainer(TrialConfig(image_size=64, batch_size=2, device="cpu", encoder="resnet18", epochs=2),
                      tiny_data())
    save_state(trainer.state_dict(), tmp_path / "state.pt")
    state = load_state(tmp_path / "state.pt")
    restored = Trainer(TrialConfig.from_flat(state["config"]), tiny_data())
    restored.load_state_dict(state)
    for name, tensor in trainer.model.state_dict().items():
        assert torch.equal(tensor, restored.model.state_dict()[name]), name


def test_a_crafted_checkpoint_is_refused_without_running_its_code(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UserError, match="is not a searchseg checkpoint"):
        load_state(crafted_checkpoint(tmp_path / "state.pt", marker))
    assert not marker.exists()


GARBAGE = [b"", b"\x00" * 64, b"PK\x03\x04 not really a zip",
           *(random.Random(seed).randbytes(4096) for seed in range(30))]  # random bytes once failed as IndexError


@pytest.mark.parametrize("content", GARBAGE)
def test_a_garbage_checkpoint_is_one_line(tmp_path, content):
    (tmp_path / "state.pt").write_bytes(content)
    with pytest.raises(UserError, match=r"state\.pt is not a searchseg checkpoint"):
        load_state(tmp_path / "state.pt")


def test_trial_resume_from_a_crafted_checkpoint_exits_2_and_runs_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    (tmp_path / "victim").mkdir()
    crafted_checkpoint(tmp_path / "victim" / "checkpoint.pt", marker)
    with pytest.raises(SystemExit) as exit_info:
        main(["--resume", "--name", "victim", "--output", str(tmp_path), "--quiet"])
    assert exit_info.value.code == 2
    assert "checkpoint.pt is not a searchseg checkpoint" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_encoder_weights_holding_a_pickle_payload_are_refused_without_running_it(tmp_path, suffix):
    from searchseg.training.models import create_model

    marker = tmp_path / "pwned"
    weights = tmp_path / f"encoder{suffix}"
    torch.save({"conv1.weight": Payload(marker)}, weights)
    with pytest.raises(UserError, match=f"encoder weights .*encoder\\{suffix} are not a state dict of tensors"):
        create_model("unet", "resnet18", str(weights), classes=2)
    assert not marker.exists()
