"""Work sent to a node that runs trials: a real Ray task in another process, its lines printed by the driver, its
one-line errors kept as they are, and a plain call without a cluster."""

from __future__ import annotations

import os
import sys

import pytest
import ray

from searchseg.errors import UserError
from searchseg.provenance import ray_node_id
from searchseg.tuning.on_worker import on_trial_node

ONE_CPU = {"cpu": 1.0, "gpu": 0.0}
# A worker cannot import this test module: its functions travel by value, as the package's need not.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def where(label: str, echo) -> tuple[int, str]:
    echo(f"{label} ran in {os.getpid()}")
    return os.getpid(), ray_node_id()


def refuse(echo) -> None:
    raise UserError("the folder x is not shared; give --storage a shared folder")


def test_without_a_cluster_the_work_runs_in_this_process():
    lines = []
    assert on_trial_node(where, "timing", resources=None, echo=lines.append) == (os.getpid(), ray_node_id())
    assert lines == [f"timing ran in {os.getpid()}"]


def test_on_a_cluster_the_work_is_a_ray_task_whose_lines_the_driver_prints(local_ray):
    lines = []
    pid, node = on_trial_node(where, "final", resources=ONE_CPU, echo=lines.append)
    assert pid != os.getpid() and lines == [f"final ran in {pid}"]
    assert node == ray_node_id() != ""  # one node here; on a cluster metrics.json tells which
    shipped = ray.put("timing")  # data put in the object store once arrives as itself, as _plan's timings rely on
    on_trial_node(where, shipped, resources=ONE_CPU, echo=lines.append)
    assert lines[-1].startswith("timing ran in ")


def test_a_user_error_in_the_task_is_raised_as_itself(local_ray):
    with pytest.raises(UserError) as raised:
        on_trial_node(refuse, resources=ONE_CPU)
    assert type(raised.value) is UserError and str(raised.value).startswith("the folder x is not shared")
