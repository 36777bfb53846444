"""A real multi-node Ray cluster on one machine, as an autoscaling cluster meets a job: a head with no CPU (it only
hosts the driver) and no worker yet. The search joins it with ``--address`` and ``--gpus-per-trial 0.5`` and waits;
two workers join with ``ray start``, each with two CPUs, two logical GPUs (the models run on the CPU) and its own
custom resource, so 4 trials run at once; then one worker's raylet is killed mid-search. The final model trains
on a worker, not in the driver on the head."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from searchseg.layout import ExperimentLayout
from tests.conftest import pids_matching

pytestmark = pytest.mark.slow

# Tests run the head, the workers and the driver with one setting, so no token has to travel between them.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ADDRESS": ""}
SPACE = """
search: {samples: 4, epochs: 6, grace_period: 6, reduction_factor: 2, concurrency: 4}
fixed: {image_size: 64, batch_size: 4, augment: none, arch: unet, encoder: resnet18, group_by: folder,
        val_fraction: 0.25, test_fraction: 0.25}
params:
  lr: {loguniform: [1.0e-3, 3.0e-3]}
"""


def ray_cli(*args: str) -> str:
    result = subprocess.run(["ray", *args], env=ENV, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout + result.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def cluster():
    subprocess.run(["ray", "stop", "--force"], env=ENV, capture_output=True, timeout=120)
    port = free_port()
    address = f"127.0.0.1:{port}"
    memory = "--object-store-memory=150000000"
    ray_cli("start", "--head", f"--port={port}", "--num-cpus=0", "--num-gpus=0", "--include-dashboard=false",
            "--disable-usage-stats", memory)
    yield address
    subprocess.run(["ray", "stop", "--force"], env=ENV, capture_output=True, timeout=120)


def raylet_node_ids() -> dict[str, int]:
    """node id -> raylet pid, for every raylet on this machine."""
    found = {}
    for pid in pids_matching("raylet/raylet"):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        match = re.search(r"--node_id=([0-9a-f]+)", command)
        if match and "node:__internal_head__" not in command:
            found[match.group(1)] = pid
    return found


def kill_node(raylet_pid: int) -> None:
    """What a reclaimed spot instance does to a node: its raylet and every worker process under it vanish."""
    children = [pid for pid in pids_matching("ray::") if _parent(pid) == raylet_pid]
    for pid in [raylet_pid, *children]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _parent(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return -1
    return int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))


def start_workers(address: str) -> None:
    memory = "--object-store-memory=150000000"
    for node in ("node_a", "node_b"):
        ray_cli("start", f"--address={address}", "--num-cpus=2", "--num-gpus=2", f"--resources={json.dumps({node: 1})}",
                memory)


def test_a_job_waits_for_workers_then_spreads_over_them_and_survives_a_killed_worker(cluster, search_dataset,
                                                                                        tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    storage = tmp_path / "shared"
    command = [sys.executable, "-m", "searchseg.run", "--space", str(space), "--data", str(search_dataset),
               "--class-map", str(search_dataset / "classes.yaml"), "--samples", "4", "--address", cluster,
               "--storage", str(storage), "--gpus-per-trial", "0.5",
               "--name", "multinode", "--max-failures", "3"]
    impossible = subprocess.run([*command[:-6], "--gpus-per-trial", "8", "--cluster-wait", "3", "--name", "never"],
                                env=ENV, capture_output=True, text=True, timeout=120)
    assert impossible.returncode == 2 and "Traceback" not in impossible.stderr, impossible.stderr[-2000:]
    assert "no node of the cluster at" in impossible.stderr and "8 GPU after 3s" in impossible.stderr
    log = tmp_path / "driver.log"
    with log.open("w") as output:
        driver = subprocess.Popen(command, env=ENV, stdout=output, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while "waiting for a node with one trial's 1 CPU, 0.5 GPU" not in log.read_text() and time.time() < deadline:
        assert driver.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    assert raylet_node_ids() == {}, "a worker was there before the job"
    start_workers(cluster)
    workers = raylet_node_ids()
    assert len(workers) == 2, workers
    curves_csv = storage / "multinode" / "curves.csv"
    victim = None
    deadline = time.time() + 300
    while victim is None and time.time() < deadline and driver.poll() is None:
        if curves_csv.is_file():
            curves = pd.read_csv(curves_csv)
            on_worker = curves[curves["node_id"].isin(workers) & (curves["epoch"] >= 2) & (curves["epoch"] < 5)]
            if len(on_worker):
                victim = on_worker["node_id"].iloc[0]
                kill_node(workers[victim])
        time.sleep(0.2)
    assert victim is not None, "no trial reached epoch 2 on a worker while the search ran"
    driver.wait(timeout=600)
    output = log.read_text()
    assert driver.returncode == 0, output[-3000:]
    assert "the cluster can run trials: 3 node(s)" in output or "the cluster can run trials: 2 node(s)" in output

    trials = pd.read_csv(storage / "multinode" / "trials.csv", keep_default_na=False)
    curves = pd.read_csv(curves_csv)
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert (trials["status"] == "completed").all(), trials[["trial_id", "status", "stop_reason"]]
    last_start = trials["started_at"].astype(float).max()
    assert (trials["finished_at"].astype(float) > last_start).all(), "the 4 trials did not all run at once"
    assert curves["node_id"].nunique() >= 2, "every trial ran on one node"
    # decoded once into the shared storage, and memory-mapped there by the trials on both workers
    assert (ExperimentLayout(storage / "multinode").decoded / "decoded.json").is_file()
    saved = [folder.config for folder in ExperimentLayout(storage / "multinode").trial_folders()]
    assert len(saved) == 4 and all(config.is_file() for config in saved), saved  # synced from the workers
    assert not curves.duplicated(["trial_id", "epoch"]).any()
    assert (curves.groupby("trial_id")["epoch"].apply(sorted).map(list) == [[1, 2, 3, 4, 5, 6]] * 4).all()
    resumed = trials[trials["resumed_from_epoch"].astype(int) > 0]
    assert len(resumed) >= 1, "no trial on the killed node was resumed from its checkpoint"
    moved = curves[curves["trial_id"].isin(resumed["trial_id"])]
    assert victim in set(moved["node_id"]) and len(set(moved["node_id"])) >= 2
    final = json.loads(ExperimentLayout(storage / "multinode").final().metrics.read_text())
    assert final["node_id"] in set(workers) - {victim}, "the final model was not trained on a live worker"
    assert "final model: sent to a worker with a trial's 1 CPU and 1 GPU" in output
