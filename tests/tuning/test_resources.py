"""What a trial gets by default on a cluster's nodes."""

from searchseg.tuning.search import cpus_per_gpu_trial

HEAD = {"CPU": 8.0}  # a CPU-only head: no trial runs there


def test_a_gpu_trial_gets_its_nodes_cpus_shared_by_the_trials_its_gpus_hold_not_the_cluster_totals():
    four_gpus = {"CPU": 16.0, "GPU": 4.0}
    assert cpus_per_gpu_trial(0.5, [HEAD, four_gpus]) == 2.0  # 8 trials on the node; the head's 8 CPUs not counted
    assert cpus_per_gpu_trial(1.0, [HEAD, four_gpus, {"CPU": 4.0, "GPU": 1.0}]) == 4.0  # the fewest over GPU nodes
    assert cpus_per_gpu_trial(0.25, [{"CPU": 2.0, "GPU": 1.0}]) == 1.0  # never below one CPU


def test_with_no_node_that_holds_a_trial_yet_a_trial_gets_one_cpu():
    assert cpus_per_gpu_trial(1.0, [HEAD]) == 1.0
    assert cpus_per_gpu_trial(2.0, [HEAD, {"CPU": 4.0, "GPU": 1.0}]) == 1.0
