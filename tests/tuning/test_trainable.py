"""What a retried or resumed trial continues from, on real checkpoint folders."""

from __future__ import annotations

from pathlib import Path

from ray import tune

from searchseg.tuning.trainable import _restorable


def test_a_resume_pointing_at_a_deleted_checkpoint_continues_from_the_newest_one_beside_it(tmp_path):
    trial = tmp_path / "train_segmentation_abc"
    for epoch in (9, 10, 11):  # 10 and 11 beside the one the saved state names: 11 is the newest
        (trial / f"checkpoint_{epoch:06d}").mkdir(parents=True)
    (trial / "checkpoint_000012.tmp").touch()  # not a checkpoint folder
    kept = _restorable(tune.Checkpoint(str(trial / "checkpoint_000008")))  # deleted after 9 was reported
    assert kept is not None and Path(kept.path).name == "checkpoint_000011"
    present = tune.Checkpoint(str(trial / "checkpoint_000009"))
    assert _restorable(present) is present  # Tune's own choice whenever it is there
    assert _restorable(tune.Checkpoint(str(tmp_path / "gone" / "checkpoint_000001"))) is None  # starts again
    assert _restorable(None) is None
