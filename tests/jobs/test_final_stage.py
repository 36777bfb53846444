"""The final stage on a cluster's worker that cannot see the experiment's folder (a remote --storage): it trains in a
scratch copy on its node, and the driver writes what it sends back, metrics.json last."""

from __future__ import annotations

import json
import sys
import time
from types import SimpleNamespace

import ray

from searchseg.final.finalize import continue_best
from searchseg.jobs.final_stage import final_stage
from searchseg.layout import ExperimentLayout
from tests.conftest import tiny_data
from tests.final.test_finalize import stopped_trial

# A worker cannot import this test module: its functions travel by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def continue_in_scratch(experiment_dir, *args, echo, **kwargs):
    echo(f"ran in {experiment_dir}")
    return continue_best(experiment_dir, *args, echo=echo, **kwargs)


def test_a_worker_that_cannot_see_the_experiment_trains_in_a_scratch_copy_and_sends_final_back(tmp_path, local_ray):
    data = tiny_data(count=16)
    experiment = tmp_path / "exp"
    stopped_trial(experiment, data)  # best_config.yaml and the trial's state.pt
    outcome = SimpleNamespace(experiment_dir=experiment, worker_resources={"cpu": 1.0, "gpu": 0.0},
                              workers_share_folder=False)
    lines = []
    final = final_stage(outcome, continue_in_scratch, experiment, experiment / "state.pt", data, time.time() + 5,
                        step_seconds=0.6, overlays=2, progress=True, echo=lines.append)
    assert lines[0] == "final model: sent to a worker with a trial's 1 CPU; its lines follow when it ends"
    assert "searchseg-final-" in lines[1] and str(tmp_path) not in lines[1], lines  # not the driver's folder
    assert any(line.startswith("final model: training unet/resnet18 from its trial's epoch 3") for line in lines)
    written = ExperimentLayout(experiment).final()
    assert json.loads(written.metrics.read_text())["test_miou"] == final.test_miou
    assert final.node_id == ray.get_runtime_context().get_node_id()
    assert written.model.is_file() and written.config.is_file() and len(list(written.overlays.iterdir())) == 2
    assert not written.checkpoint.exists()  # a finished final stage leaves nothing to resume, here as in place
