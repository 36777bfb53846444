"""The benchmark entry points: every module imports, the equal-time table is computed right from its rows, and a
cheap row runs through ``python -m benchmarks`` (a benchmark entry point no test runs breaks silently)."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

import benchmarks
from benchmarks import equal_time

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)))
def test_every_benchmark_module_imports(module):
    importlib.import_module(f"benchmarks.{module}")


def arm(miou: float, seconds: float = 297.0) -> dict:
    return {"test_miou": miou, "seconds": seconds}


def test_the_equal_time_table_pairs_the_three_arms_by_seed_and_keeps_two_arm_rows_out():
    rows = [{"dataset": "d", "budget": 300.0, "seed": seed, "searchseg": arm(s), "no_search": arm(n, 290.0),
             "recipe": arm(r)} for seed, (s, n, r) in enumerate([(0.40, 0.35, 0.30), (0.42, 0.36, 0.33),
                                                                  (0.41, 0.40, 0.31)])]
    rows.append({"dataset": "d", "budget": 300.0, "seed": 0, "searchseg": arm(0.1), "recipe": arm(0.9)})  # older
    gain, spread, verdict = equal_time.paired_difference(rows[:3], "no_search")
    assert gain == pytest.approx(0.04) and spread == pytest.approx(0.02160, abs=1e-4) and verdict == "ahead"
    [line] = equal_time.table(rows).splitlines()[2:]
    assert line.startswith("| d | 300 s | 3 | 0.97-0.99 | 0.410 | 0.370 | 0.313 | +0.040 ± 0.022 ahead | +0.097")
    assert "xychart-beta" in equal_time.chart(rows)


def test_a_space_variant_is_paired_with_the_latest_three_arm_run_of_its_seed():
    def searched(val: float, test: float) -> dict:
        return {"test_miou": test, "seconds": 297.0, "final_training": {"kept_val_miou": val, "trial_choice": {
            "trial": "a"}}, "trials": [{"trial_id": "a", "arch": "unet", "encoder": "resnet18", "lr": 3e-3}]}

    three_arm = [{"dataset": "d", "budget": 300.0, "seed": seed, "searchseg": searched(0.50, 0.40),
                  "no_search": searched(0.45, 0.38), "recipe": arm(0.3)} for seed in (0, 1)]
    variant = [{"dataset": "d", "budget": 300.0, "seed": seed, "space": "v.yaml", "searchseg": searched(0.52, test)}
               for seed, test in ((0, 0.41), (1, 0.43), (2, 0.9))]  # seed 2 has no three-arm run to pair with
    text = equal_time.variant_table(three_arm + variant, "v.yaml")
    assert "| d | 300 s | 0 | 0.520, 0.410 | 0.500, 0.400 | 0.450, 0.380 | unet/resnet18 lr 0.003 |" in text
    assert "v.yaml - search (test) +0.020 ± 0.010" in text and "v.yaml - no search (val) +0.070 ± 0.000" in text
    assert "| 2 |" not in text and "2 seeds" in text


def test_the_equal_time_runs_the_no_search_arm_with_the_search_switched_off(tmp_path):
    command = equal_time.run_command({}, 300, 1, tmp_path, "x", search=False)
    assert command[command.index("--samples") + 1] == "0" and command[command.index("--budget") + 1] == "300"


def test_a_holdout_run_never_sees_the_test_images_and_checks_on_whole_groups_of_training_images(tmp_path):
    names = [f"Tile {t}/images/part_{i}" for t in range(1, 7) for i in range(3)]
    data = SimpleNamespace(names=names, splits={"test": np.arange(0, 3), "val": np.arange(3, 6),
                                                 "train": np.arange(6, 18)})
    dataset = {"data": tmp_path, "class_map": tmp_path / "map.json", "group_by": "folder"}
    spec = equal_time.holdout_dataset("dubai_aerial", dataset, data, 0, tmp_path / "check")
    lists = {split: (tmp_path / "check" / f"{split}.txt").read_text().split("\n")[:-1]
             for split in ("train", "val", "test")}
    assert len(lists["test"]) == 3 and len({n.split("/")[0] for n in lists["test"]}) == 1  # one whole tile
    assert lists["val"] == names[3:6] and sorted(lists["train"] + lists["test"]) == sorted(names[6:])
    assert yaml.safe_load(spec["data"].read_text())["class_map"] == str((tmp_path / "map.json").resolve())


@pytest.mark.parametrize("variant", ["dubai_aerial_by_crop", "chase_db1_wide_val"])
def test_the_wide_validation_variants_hold_out_validation_the_planner_can_rank_on(variant, tmp_path):
    from searchseg.training.class_counts import MIN_INDEPENDENT_GROUPS

    if not Path(equal_time.DATASETS[variant]["data"]).is_dir():
        pytest.skip(f"{equal_time.DATASETS[variant]['data']} is absent")
    dataset = equal_time.DATASETS[variant]
    spec = equal_time.holdout_dataset(variant, dataset, equal_time.decoded(dataset, 32), 0, tmp_path / "check")
    data = equal_time.decoded(spec, 32)
    assert data.independent_group_count("val") >= MIN_INDEPENDENT_GROUPS
    checked = {equal_time.CHECK_GROUP[variant](data.names[i]) for i in data.splits["test"]}
    assert not checked & {equal_time.CHECK_GROUP[variant](data.names[i]) for i in data.splits["train"]}


def test_the_holdout_table_compares_the_kept_model_with_the_last_epoch_on_the_check_split():
    def run(seed: int, win_rate: float, trial: float, last: float) -> dict:
        kept_epoch = 9 if win_rate >= 0.95 else 40
        return {"dataset": "d", "budget": 300.0, "seed": seed, "holdout": True, "searchseg": {"final_training": {
            "trial_win_rate": win_rate, "trial_test_miou": trial, "last_test_miou": last, "start_epoch": 9,
            "kept_epoch": kept_epoch}}}

    rows = [run(0, 0.97, 0.30, 0.36), run(1, 0.20, 0.31, 0.35), run(2, 0.70, 0.40, 0.38)]
    for row, no_search in zip(rows, (0.35, 0.30, 0.40), strict=True):
        row["searchseg"]["test_miou"] = row["searchseg"]["final_training"]["last_test_miou"]
        row["no_search"] = {"test_miou": no_search}
    text = equal_time.holdout_table(rows)
    assert not equal_time.table(rows).splitlines()[2:]  # no recipe: not a three-arm row
    assert "| d | 300 s | 0 | 97% | 0.300 | 0.360 | trial state | -0.060 | no |" in text
    assert "| d | 300 s | 1 | 20% | 0.310 | 0.350 | last epoch | +0.000 | yes |" in text
    assert "3 runs: the current rule's kept model - the last epoch on the check split -0.0200" in text
    assert "agreed with the check split's in 2 of 3" in text
    assert "- d 300 s, 3 seeds: search - no search on the check split +0.013 ± 0.029 tie" in text


def test_pairing_no_search_later_takes_only_check_split_search_rows_that_lack_it():
    def row(seed, budget=900.0, **extra):
        return {"dataset": "dubai_aerial", "budget": budget, "seed": seed, "searchseg": {}, **extra}

    rows = [row(6, holdout=True), row(7, holdout=True, no_search={}), row(8), row(9, holdout=True, space="v.yaml"),
            row(10, budget=300.0, holdout=True), row(11, holdout=True), row(12, holdout=True)]
    wanted = equal_time.lacking_no_search(rows, ["dubai_aerial"], [900.0], range(6, 12))
    assert [r["seed"] for r in wanted] == [6, 11]  # paired already, test split, a variant, another T, other seeds out
    assert not equal_time.lacking_no_search(rows, ["chase_db1"], [900.0], range(6, 12))
    variant = equal_time.lacking_no_search(rows, ["dubai_aerial"], [900.0], range(6, 12), space="spaces/v.yaml")
    assert [r["seed"] for r in variant] == [9]  # a space file's search rows pair with that space's default


def test_pairing_no_search_when_nothing_lacks_it_says_what_to_pass(tmp_path):
    output = tmp_path / "rows.json"
    output.write_text(json.dumps([{"dataset": "dubai_aerial_by_crop", "budget": 2400.0, "seed": 20, "holdout": True,
                                   "space": "focused.yaml", "searchseg": {}}]))
    done = subprocess.run([sys.executable, "-m", "benchmarks.equal_time", "--holdout", "--pair-no-search",
                           "--budget", "2400", "--first-seed", "20", "--seeds", "1", "--datasets",
                           "dubai_aerial_by_crop", "--output", str(output)],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 2
    assert "no --holdout --search-only row of arch_loss" in done.stderr and "--space" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_python_m_benchmarks_runs_a_cheap_row_and_writes_it_when_it_finishes(tmp_path):
    output = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "5", "--output", str(output)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "5. trial start-up" in done.stdout and "| 5. trial start-up" in output.read_text()


def test_the_gpu_pipeline_benchmark_measures_its_host_side_parts_on_generated_images():
    from benchmarks import gpu_pipeline

    data = gpu_pipeline.generated_data(gpu_pipeline.BATCH + 4, 64)
    assert data.images.shape == (20, 64, 64, 3) and set(np.unique(data.masks)) <= {0, 1, 2, 3}
    assert gpu_pipeline.loader_images_per_second(data, workers=0, batches=3) > 0
    assert gpu_pipeline.peak_tflops("NVIDIA H100 80GB HBM3", None) == 989.0
    assert gpu_pipeline.peak_tflops("Some GPU", None) is None and gpu_pipeline.peak_tflops("x", 50.0) == 50.0
    # the processes that share a device start together after their warm-up (on the CPU here)
    assert gpu_pipeline.shared_images_per_second(64, 2, steps=1, device="cpu") > 0


@pytest.mark.slow
def test_the_scale_benchmark_decodes_generated_images_and_starts_trials_on_them(tmp_path, local_ray):
    from benchmarks import scale

    row = scale.measure(tmp_path / "generated", count=24, size=64, trials=2)
    assert row["images"] == 24 and (tmp_path / "generated" / "decoded" / "decoded.json").is_file()
    driver = row["driver"]
    # the mapped data travels as its folder's name; in memory it travels as its arrays (24 x 64 x 64 x 4 bytes)
    assert driver["mapped"]["object_store_gib"] * scale.GIB < 24 * 64 * 64 * 4 < \
        driver["in_memory"]["object_store_gib"] * scale.GIB
    assert len({phase["fingerprint"] for phase in driver.values()}) == 1  # the same arrays by every path
    assert [w["batch"] for w in row["workers"]] == [[8, 3, 64, 64]] * 2
    assert "trial task 2: to its first batch" in scale.table(row)


def test_the_ensemble_table_pairs_the_ensemble_with_the_single_model_and_the_half_validation_prefers():
    from benchmarks import ensemble

    def row(seed: int, single: float, halves: tuple[float, float], val: tuple[float, float], ens: float) -> dict:
        return {"dataset": "d", "seed": seed, "ensemble_val_win_rate": 0.6 if seed else 0.1,
                "test": {"single": single, "half_a": halves[0], "half_b": halves[1], "ensemble": ens},
                "val": {"half_a": val[0], "half_b": val[1]}}

    # validation prefers half_b in seed 0 and half_a in seed 1: the better halves on check are 0.30 and 0.41
    rows = [row(0, 0.40, (0.35, 0.30), (0.1, 0.2), 0.42), row(1, 0.40, (0.41, 0.20), (0.3, 0.2), 0.46)]
    line = ensemble.table(rows).splitlines()[2]
    assert line == "| d | 2 | 0.400 | 0.355 | 0.440 | +0.040 ± 0.020 ahead | +0.085 ± 0.035 ahead | 1 of 2 |"


def test_the_ensemble_pilot_scores_its_arms_as_the_trainer_does(tmp_path):
    from benchmarks import ensemble

    if not Path(equal_time.DATASETS["chase_db1"]["data"]).is_dir():
        pytest.skip("../shared/datasets/chase_db1 is absent")
    [row] = ensemble.measure(["chase_db1"], range(1), epochs=2, epoch_steps=2, threads=1, image_size=64,
                             on_row=lambda row: None)
    assert set(row["test"]) == {"single", "half_a", "half_b", "ensemble"} and 0 <= row["ensemble_val_win_rate"] <= 1
    data = equal_time.decoded(equal_time.DATASETS["chase_db1"], 64)
    trainer = ensemble.train(data, equal_time.DATASETS["chase_db1"], epochs=1, epoch_steps=2, seed=0, threads=1)
    val = data.splits["val"]
    miou, counts = ensemble.scored(ensemble.probabilities(trainer, val), data, val)
    assert miou == pytest.approx(trainer.evaluate("val")[1]["miou"], abs=1e-6)
    assert counts.shape == (len(val), 3, data.num_classes)


def test_the_search_ensemble_takes_the_chosen_trial_and_the_best_other_one_with_a_checkpoint(tmp_path):
    from benchmarks import ensemble_search
    from searchseg.layout import TRIAL_FUNCTION, ExperimentLayout

    experiment = ExperimentLayout(tmp_path)
    (tmp_path / "trials.csv").write_text("trial_id,best_val_miou\na,0.30\nb,0.50\nc,0.40\nd,0.45\n")
    for trial, checkpoints in (("a", 2), ("b", 0), ("c", 1), ("d", 1)):  # b, the best, saved no checkpoint
        folder = tmp_path / f"{TRIAL_FUNCTION}_{trial}_00000"
        for number in range(checkpoints):
            (folder / f"checkpoint_{number:06d}").mkdir(parents=True)
            (folder / f"checkpoint_{number:06d}" / "state.pt").write_bytes(b"")
        folder.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text("{}")
    found = ensemble_search.members(experiment, "a")
    assert [(trial, state.parent.name) for trial, _, state in found] == [("a", "checkpoint_000001"),
                                                                         ("d", "checkpoint_000000")]
    assert len(ensemble_search.members(experiment, "b")) == 2  # the chosen one without a checkpoint is skipped


def test_the_search_ensemble_table_pairs_the_ensemble_with_the_search_and_no_search_by_seed():
    from benchmarks import ensemble_search

    def row(seed: int, single: float, ensemble: float, default: float, win_rate: float) -> dict:
        return {"dataset": "d", "budget": 300.0, "seed": seed, "members": [{}, {}], "no_search": arm(default),
                "test": {"single": single, "ensemble": ensemble}, "ensemble_val_win_rate": win_rate}

    rows = [row(0, 0.40, 0.43, 0.41, 0.8), row(1, 0.50, 0.51, 0.49, 0.3),
            {"dataset": "d", "budget": 300.0, "seed": 2, "ensemble": None, "reason": "1 trial checkpoint(s)"}]
    line = ensemble_search.table(rows).splitlines()[2]
    assert line == ("| d | 300 s | 2 | 0.450 | 0.450 | 0.470 | +0.020 ± 0.010 ahead | +0.020 ± 0.000 ahead | "
                    "+0.000 ± 0.010 tie | 1 of 2 |")


def test_a_search_ensemble_member_is_continued_past_its_trial_and_scored_as_the_trainer_does(tmp_path):
    from benchmarks import ensemble, ensemble_search
    from tests.conftest import tiny_data
    from tests.final.test_finalize import stopped_trial

    data = tiny_data(count=16)
    trial = stopped_trial(tmp_path, data, epochs_run=1)
    run = ensemble_search.continued(tmp_path / "best_config.yaml", tmp_path / "state.pt", data, seconds=3.0,
                                    step_seconds=0.05, scratch=tmp_path / "member.pt")
    member = run.trainer
    assert run.start["epoch"] == trial.epoch and member.epoch > trial.epoch  # from the trial's epoch, not scratch
    val = data.splits["val"]
    miou, _ = ensemble.scored(ensemble.probabilities(member, val), data, val)
    assert miou == pytest.approx(member.evaluate("val")[1]["miou"], abs=1e-6)


def test_the_alternative_rule_keeps_the_default_unless_a_trial_beats_it_on_nearly_every_resample():
    from benchmarks import selection_rule
    from tests.conftest import image_counts

    default = image_counts([30] * 9)
    clearly, marginally = image_counts([44] * 9), image_counts([29, 31, 32, 29, 31, 30, 31, 28, 50])
    scores = {"default": 0.5, "clear": 0.6, "marginal": 0.7, "unread": 0.9}
    chosen, rates = selection_rule.default_unless_clearly_beaten(
        scores, "default", {"default": default, "clear": clearly, "marginal": marginally})
    assert chosen == "clear" and rates["clear"] == 1.0 and rates["marginal"] < 0.95 and "unread" not in rates
    chosen, _ = selection_rule.default_unless_clearly_beaten(
        {"default": 0.5, "marginal": 0.7}, "default", {"default": default, "marginal": marginally})
    assert chosen == "default"
    chosen, _ = selection_rule.default_unless_clearly_beaten(  # of two clear winners, the best-scoring one
        {"default": 0.5, "clear": 0.6, "clearer": 0.65}, "default",
        {"default": default, "clear": clearly, "clearer": image_counts([40] * 9)})
    assert chosen == "clearer"


def test_the_selection_rule_table_counts_runs_where_both_rules_chose_the_same_trial_as_no_difference():
    from benchmarks import selection_rule

    def row(seed: int, current: str, alternative: str, check: tuple, val: tuple) -> dict:
        arms = ("current", "alternative")
        return {"dataset": "d", "budget": 300.0, "seed": seed, "current": current, "alternative": alternative,
                "check": dict(zip(arms, check, strict=True)), "val": dict(zip(arms, val, strict=True))}

    rows = [row(7, "a", "b", (0.40, 0.44), (0.50, 0.52)), row(8, "a", "a", (0.30, 0.30), (0.4, 0.4)),
            row(9, "c", "a", (0.50, 0.48), (0.45, 0.47)),
            {"dataset": "d", "budget": 300.0, "seed": 10, "alternative": None, "reason": "no checkpoint"}]
    line = selection_rule.table(rows).splitlines()[2]
    assert line == "| d | 300 s | 3 | 2 | +0.007 ± 0.025 tie | 1 of 2 |"


def test_the_selection_rule_reads_each_trials_latest_checkpoint(tmp_path):
    from benchmarks import selection_rule
    from searchseg.layout import TRIAL_FUNCTION, ExperimentLayout

    (tmp_path / "trials.csv").write_text("trial_id,best_val_miou\na,0.30\nb,0.50\n")
    for trial, checkpoints in (("a", 2), ("b", 0)):
        folder = tmp_path / f"{TRIAL_FUNCTION}_{trial}_00000"
        for number in range(checkpoints):
            (folder / f"checkpoint_{number:06d}").mkdir(parents=True)
        folder.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text("{}")
    found = selection_rule.latest_checkpoints(ExperimentLayout(tmp_path))
    assert {trial: path.name for trial, path in found.items()} == {"a": "checkpoint_000001"}


@pytest.mark.parametrize("module", ["ensemble_search", "selection_rule"])
def test_a_check_split_benchmark_with_no_seeds_prints_the_table_of_the_rows_it_already_has(tmp_path, monkeypatch,
                                                                                         capsys, module):
    output = tmp_path / "rows.json"
    output.write_text("[]")
    monkeypatch.setattr(sys, "argv", [module, "--seeds", "0", "--output", str(output)])
    importlib.import_module(f"benchmarks.{module}").main()
    assert capsys.readouterr().out.startswith("| dataset | T | runs |") and output.read_text() == "[]"


def test_curves_record_every_epoch_with_what_a_search_sees_and_what_its_choice_would_get():
    from benchmarks import curves
    from searchseg.spaces.space import load_space
    from tests.conftest import tiny_data

    space = load_space("arch_loss")
    chosen = curves.configurations(space, default_seeds=1, samples=2, sample_seed=0)
    assert [c["config_id"] for c in chosen] == ["start_0", "start_1", "start_0_seed_1", "sample_0_0", "sample_0_1"]
    assert chosen[2]["searched"] == space.start[0] and chosen[2]["seed"] == 1
    assert chosen[3]["searched"] != chosen[4]["searched"] and all(space.admits(c["searched"]) for c in chosen)
    seeded = curves.configurations(space, default_seeds=0, samples=2, sample_seed=0, seeded=("sample_0_1",))
    assert [(c["config_id"], c["seed"]) for c in seeded[2:4]] == [("sample_0_1_seed_1", 1), ("sample_0_1_seed_2", 2)]
    assert seeded[2]["searched"] == chosen[4]["searched"]  # the same sample, other training seeds
    with pytest.raises(SystemExit, match="no configuration sample_0_7 in this study; its configurations: start_0"):
        curves.configurations(space, default_seeds=0, samples=2, sample_seed=0, seeded=("sample_0_7",))
    data = tiny_data()
    rows = curves.curve(space, {}, data, space.start[0], seed=0, epochs=2, epoch_steps=1)
    assert [row["epoch"] for row in rows] == [1, 2]
    for row in rows:
        assert row["seconds"] > 0 and 0 <= row["val_miou"] <= 1 and 0 <= row["check_miou"] <= 1
        assert np.asarray(row["val_counts"]).shape == (len(data.splits["val"]), 3, data.num_classes)


def test_a_curves_run_cut_short_trains_only_the_configurations_of_its_study_it_lacks():
    from benchmarks import curves

    study = {"dataset": "d", "split_seed": 15, "space": "arch_loss", "epochs": 24, "epoch_steps": 15}
    rows = [{**study, "config_id": "start_0", "epoch": 1}, {**study, "epochs": 12, "config_id": "start_1"}]
    chosen = [{"config_id": name} for name in ("start_0", "start_1", "sample_0_0")]
    assert [c["config_id"] for c in curves.to_train(rows, study, chosen)] == ["start_1", "sample_0_0"]


def replay_curves(check: dict[str, float], val: dict[str, list[float]], hits: dict[str, list[int]]):
    """Recorded curves of seed 0 (the default's also with seed 1): each configuration's validation mIoU per epoch,
    one check score for every epoch and validation counts of ``hits`` found foreground pixels of each image."""
    from tests.conftest import image_counts

    rows = []
    for config_id, scores in val.items():
        seeds = (0, 1) if config_id == "start_0" else (0,)
        for seed in seeds:
            name = config_id if seed == 0 else f"{config_id}_seed_{seed}"
            for epoch, score in enumerate(scores, start=1):
                rows.append({"dataset": "d", "split_seed": 15, "space": "arch_loss", "epochs": len(scores),
                             "epoch_steps": 15, "config_id": name, "seed": seed, "epoch": epoch, "seconds": 10.0,
                             "searched": {"arch": config_id, "encoder": "e", "lr": 1e-3},
                             "val_miou": score, "check_miou": check[config_id] - 0.01 * seed,
                             "val_counts": image_counts(hits[config_id]).tolist()})
    return pd.DataFrame(rows)


def test_replayed_searches_try_the_start_configurations_first_and_stop_where_the_simulated_seconds_end():
    from benchmarks import replay

    val = {"start_0": [0.3, 0.4, 0.5], "start_1": [0.2, 0.3, 0.4], "sample_a": [0.1, 0.2, 0.3],
           "sample_b": [0.05, 0.1, 0.2]}
    curves = replay_curves({name: 0.4 for name in val}, val, {name: [30] * 9 for name in val})
    box = replay.blackbox(curves)
    assert list(box.hyperparameters.config_id) == sorted(val)  # the default's other seed is not a configuration
    # two trials at a time, each epoch 2 x 10 s: in 15 s neither start configuration has finished its first epoch
    assert replay.replay_search(box, ["start_0", "start_1"], 15.0, 3, seed=0) == {}
    assert replay.choices(curves, {}, []) == dict.fromkeys(replay.RULES, "start_0")
    first = replay.replay_search(box, ["start_0", "start_1"], 45.0, 3, seed=0)
    assert first == {"start_0": 2, "start_1": 1}  # start_1 stopped at the first rung, below start_0
    every = replay.replay_search(box, ["start_0", "start_1"], 10_000.0, 3, seed=0)
    assert set(every) == set(val) and every["start_0"] == 3 and min(every.values()) >= 1
    assert replay.SYNE_TUNE_ENV_FOLDER not in os.environ  # the tuner's results went to a folder now gone


def test_asha_replayed_on_the_mean_of_recent_evaluations_keeps_a_trial_whose_last_one_dipped():
    from benchmarks import replay

    val = {"start_0": [0.3, 0.3, 0.3], "start_1": [0.6, 0.2, 0.6]}
    curves = replay_curves({name: 0.4 for name in val}, val, {name: [30] * 9 for name in val})
    box = replay.blackbox(curves)
    starts = ["start_0", "start_1"]
    # 200 s: both trials done (3 epochs of 2 x 10 s), before Syne Tune's searcher draws either again
    assert replay.replay_search(box, starts, 200.0, 3, seed=0, grace_epochs=2) == {"start_0": 3, "start_1": 2}
    assert replay.replay_search(box, starts, 200.0, 3, seed=0, grace_epochs=2, cut_on="val_miou_recent") == {
        "start_0": 3, "start_1": 3}  # (0.6 + 0.2) / 2 at the rung, above start_0's 0.3


def test_each_rule_is_scored_by_the_check_score_of_the_configuration_it_would_continue():
    from benchmarks import replay

    # sample_a leads validation narrowly and scores worst on the check split; sample_b leads it clearly
    val = {"start_0": [0.3, 0.4, 0.5], "start_1": [0.2, 0.3, 0.45], "sample_a": [0.3, 0.4, 0.52],
           "sample_b": [0.3, 0.5, 0.6]}
    check = {"start_0": 0.40, "start_1": 0.45, "sample_a": 0.30, "sample_b": 0.42}
    hits = {"start_0": [30] * 9, "start_1": [29] * 9, "sample_a": [29, 31, 32, 29, 31, 30, 31, 28, 50],
            "sample_b": [45] * 9}
    curves = replay_curves(check, val, hits)
    starts = [{"arch": "start_0", "encoder": "e", "lr": 1e-3}, {"arch": "start_1", "encoder": "e", "lr": 1e-3}]
    chosen = replay.choices(curves, {"start_0": 3, "start_1": 3, "sample_a": 3}, starts)
    assert chosen == {"best_val": "sample_a", "default_unless_clearly_beaten": "start_0", "oracle": "start_1"}
    chosen = replay.choices(curves, {"start_0": 3, "start_1": 3, "sample_a": 3}, starts, win_rates=(0.95, 0.5))
    assert list(chosen) == ["best_val", "default_unless_clearly_beaten", "clearly_beaten@0.5", "oracle"]
    assert chosen["default_unless_clearly_beaten"] == "start_0" and chosen["clearly_beaten@0.5"] == "sample_a"
    chosen = replay.choices(curves, {"start_0": 3, "start_1": 3, "sample_a": 3, "sample_b": 3}, starts)
    assert chosen["best_val"] == chosen["default_unless_clearly_beaten"] == "sample_b"
    table = replay.replays(curves, [10_000.0], max_epochs=3, count=2).splitlines()
    # the second replay follows the default's seed-1 curve, 0.01 lower on the check split: the gains are paired
    assert table[2] == ("| 10000 | 4 | +0.0250 (100% not the default) | +0.0250 (100% not the default) | "
                        "+0.0550 (100% not the default) |")
    text = replay.headroom(curves)
    assert "its 2 seed(s) span 0.3900-0.4000" in text and "instead of its last: check +0.0000 ± 0.0000" in text


def test_a_replay_reads_one_study_of_a_curves_file_and_names_a_space_or_dataset_it_lacks(tmp_path):
    from benchmarks import replay

    val = {"start_0": [0.3, 0.4], "sample_a": [0.2, 0.5]}
    first = replay_curves({name: 0.4 for name in val}, val, {name: [30] * 9 for name in val})
    second = first.assign(space="benchmarks/spaces/default_model_tuning.yaml", check_miou=0.2)
    path = tmp_path / "curves.json"
    path.write_text(pd.concat([first, second]).to_json(orient="records"))
    assert set(replay.load_curves(path).check_miou) == {0.4, 0.39}
    assert set(replay.load_curves(path, "benchmarks/spaces/default_model_tuning.yaml").check_miou) == {0.2}
    with pytest.raises(SystemExit, match="no curves of the space 'lr_wd'"):
        replay.load_curves(path, "lr_wd")
    chase = second.assign(dataset="chase", check_miou=0.25)
    path.write_text(pd.concat([first, second, chase]).to_json(orient="records"))
    assert set(replay.load_curves(path, dataset="chase").check_miou) == {0.25}
    assert set(replay.load_curves(path, "benchmarks/spaces/default_model_tuning.yaml").check_miou) == {0.2}
    with pytest.raises(SystemExit, match="no curves of the dataset 'chase' with the space 'arch_loss'"):
        replay.load_curves(path, "arch_loss", "chase")


def test_a_replay_follows_a_samples_own_seed_curve_where_one_is_recorded():
    from benchmarks import replay

    val = {"start_0": [0.3, 0.4], "sample_a": [0.2, 0.5], "sample_b": [0.2, 0.45]}
    curves = replay_curves({name: 0.4 for name in val}, val, {name: [30] * 9 for name in val})
    seeded = curves[(curves.config_id == "sample_a")].assign(config_id="sample_a_seed_1", seed=1, check_miou=0.3)
    curves = pd.concat([curves, seeded], ignore_index=True)
    assert replay.configurations(curves) == ["sample_a", "sample_b", "start_0"]
    assert replay.final_check(curves, "sample_a", 1) == pytest.approx(0.3)  # its own seed-1 curve
    assert replay.final_check(curves, "sample_b", 1) == pytest.approx(0.4)  # seed 0's stands in


def test_a_study_borrows_the_defaults_other_seeds_only_from_a_study_whose_default_trained_the_same():
    from benchmarks import replay

    val = {"start_0": [0.3, 0.4], "sample_a": [0.2, 0.5]}
    first = replay_curves({name: 0.4 for name in val}, val, {name: [30] * 9 for name in val})
    second = first[first.seed == 0].assign(space="other")
    borrowed = replay.with_default_seeds_of(second, first)
    assert replay.curve_seeds(borrowed) == 2 and set(borrowed.space) == {"other"}
    assert replay.final_check(borrowed, "start_0", 1) == pytest.approx(0.39)
    differently = second.assign(check_miou=np.where(second.config_id == "start_0", 0.3, second.check_miou))
    with pytest.raises(SystemExit, match="trained differently"):
        replay.with_default_seeds_of(differently, first)


def test_appended_rows_keep_every_earlier_row_and_can_write_them_on_one_line(tmp_path):
    path = tmp_path / "rows.json"
    _, append = equal_time.appended_rows(path, indent=None)
    append({"a": [1, 2]})
    rows, append = equal_time.appended_rows(path, indent=None)
    append({"a": [3]})
    assert rows == [{"a": [1, 2]}, {"a": [3]}] and "\n" not in path.read_text()
