"""Where the final model trains: in this process, or on a worker of the cluster the search joined.

On a cluster (``--address``) the driver may sit on a head node with no CPU or GPU for training (``cluster.yaml``),
so the final training and the test evaluation run as one Ray task with a trial's resources (``on_trial_node``).
Where every node shares the experiment's folder (``--storage`` a folder), the task writes ``final/`` there itself,
its per-epoch checkpoint included (a killed run resumes it). With a remote ``--storage`` (s3://) the experiment's
folder is on the driver only: the task gets what the stage reads (``best_config.yaml``, the trial's state) as
bytes, works in a scratch copy of the folder on its node, and sends ``final/`` back; a run killed meanwhile
trains the final model again from the trial's state.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from searchseg.errors import UserError
from searchseg.io_utils import atomic_write
from searchseg.layout import ExperimentLayout
from searchseg.tracking.final_metrics import FinalMetrics
from searchseg.tuning.on_worker import on_trial_node

if TYPE_CHECKING:
    from searchseg.tuning.search import SearchOutcome


def final_stage(outcome: SearchOutcome, stage: Callable[..., FinalMetrics], *args, progress: bool, echo,
                **kwargs) -> FinalMetrics:
    """``stage(*args, **kwargs)`` (``continue_best`` or ``retrain_best``, whose first argument is
    ``outcome.experiment_dir``) where the search's trials ran."""
    resources = outcome.worker_resources
    if resources is None:
        return stage(*args, progress=progress, echo=echo, **kwargs)
    echo(f"final model: sent to a worker with a trial's {resources['cpu']:g} CPU"
         + (f" and {math.ceil(resources['gpu'])} GPU" if resources["gpu"] else "") + "; its lines follow when it ends")
    experiment_dir = outcome.experiment_dir
    if outcome.workers_share_folder:
        final = on_trial_node(stage, *args, resources=resources, echo=echo, progress=False, **kwargs)
        if not ExperimentLayout(experiment_dir).final().metrics.is_file():
            raise UserError(f"the final model was trained on node {final.node_id}, but its files are not in "
                            f"{experiment_dir}: give --storage a folder that every node of the cluster shares")
        return final
    read = [ExperimentLayout(experiment_dir).best_config, *(a for a in args if _inside(a, experiment_dir))]
    inputs = {path.relative_to(experiment_dir).as_posix(): path.read_bytes() for path in read if path.is_file()}
    final, files = on_trial_node(in_scratch_copy, stage, experiment_dir, inputs, *args, resources=resources,
                                 echo=echo, progress=False, **kwargs)
    metrics = ExperimentLayout(experiment_dir).final().metrics
    for path, content in sorted(files.items(), key=lambda item: experiment_dir / item[0] == metrics):
        atomic_write(experiment_dir / path, partial(Path.write_bytes, data=content))  # metrics.json last: done
    return final


def in_scratch_copy(stage: Callable[..., FinalMetrics], experiment_dir: Path, inputs: dict[str, bytes], *args,
                    **kwargs) -> tuple[FinalMetrics, dict[str, bytes]]:
    """``stage`` on a node that cannot see ``experiment_dir``: run in a scratch folder holding ``inputs`` (paths
    relative to the experiment), with every path argument inside the experiment moved there; returns its metrics and
    the files it wrote under ``final``, relative to the experiment."""
    with tempfile.TemporaryDirectory(prefix="searchseg-final-") as folder:
        scratch = Path(folder) / experiment_dir.name
        for relative, content in inputs.items():
            (scratch / relative).parent.mkdir(parents=True, exist_ok=True)
            (scratch / relative).write_bytes(content)
        moved = [scratch / a.relative_to(experiment_dir) if _inside(a, experiment_dir) else a for a in args]
        final = stage(*moved, **kwargs)
        written = ExperimentLayout(scratch).final().path
        return final, {path.relative_to(scratch).as_posix(): path.read_bytes()
                       for path in sorted(written.rglob("*")) if path.is_file()}


def _inside(value, folder: Path) -> bool:
    return isinstance(value, Path) and value.is_relative_to(folder)
