"""Benchmark 8: the Pareto search (multi-objective TPE + ParetoASHA) against multi-objective random search without
early stopping, by the hypervolume of (best val mIoU up, latency_ms down) reached at equal trial-epochs.

For each dataset and seed both searches run the bundled ``pareto`` space on the same data in this process with a
real local Ray: random search trains ``--samples`` configurations for every epoch; the Pareto search gets twice
the samples and stops trials by non-dominated sorting. Every trained epoch is one trial-epoch; a trial's point is
its best validation mIoU so far and the latency it measured. The hypervolume (reference: mIoU 0 and 1.1x the
largest latency either search measured, normalised to 1) is compared at the trial-epochs the cheaper search
used in all, and the compute saved is 1 - the Pareto search's trial-epochs per sample / random's.

``python -m benchmarks.pareto_search --datasets dubai_aerial --seeds 1`` prints a markdown table and writes the
raw numbers to ``benchmarks/pareto_search.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import ray

from benchmarks.equal_time import DATASETS
from searchseg.api import OutputConfig, Search, SearchConfig
from searchseg.io_utils import atomic_write_text
from searchseg.layout import ExperimentLayout
from searchseg.tracking.pareto import non_dominated

OBJECTIVES = "val_miou:max,latency_ms:min"


def hypervolume(points: np.ndarray, reference_latency: float) -> float:
    """Area dominated by (mIoU, latency) ``points`` up to (0, ``reference_latency``), as a share of that box."""
    if not len(points):
        return 0.0
    front = points[non_dominated(points, np.array([True, False]))]
    front = front[np.argsort(front[:, 1])]
    edges = np.append(front[1:, 1], reference_latency)
    return float(np.sum((edges - front[:, 1]) * np.maximum.accumulate(front[:, 0])) / reference_latency)


def hypervolume_at(folder: Path, trial_epochs: int, reference_latency: float) -> float:
    """The hypervolume of a search's trials after its first ``trial_epochs`` trained epochs (in report order)."""
    curves = pd.read_csv(ExperimentLayout(folder).curves).sort_values("reported_at").head(trial_epochs)
    latency = pd.read_csv(ExperimentLayout(folder).trials).set_index("trial_id")["latency_ms"]
    best = curves.groupby("trial_id")["val_miou"].max()
    return hypervolume(np.column_stack([best.to_numpy(), latency.loc[best.index].to_numpy()]), reference_latency)


def run(dataset: dict, samples: int, epochs: int, seed: int, searcher: str, scheduler: str, results: Path,
        name: str) -> Path:
    fixed = {"seed": seed, **{k: v for k, v in dataset.items() if k not in ("data", "class_map")}}
    search = Search("pareto", dataset.get("data"), class_map=dataset.get("class_map"), fixed=fixed,
                    search=SearchConfig(samples=samples, epochs=epochs, seed=seed, searcher=searcher,
                                        scheduler=scheduler, objectives=OBJECTIVES),
                    output=OutputConfig(results_dir=results, name=name, verbose=0))
    return search.fit(retrain=False, echo=lambda *_: None).experiment_dir


def compare(name: str, dataset: dict, samples: int, epochs: int, seed: int, results: Path) -> dict:
    random_dir = run(dataset, samples, epochs, seed, "random", "none", results, f"{name}-random-{seed}")
    pareto_dir = run(dataset, 2 * samples, epochs, seed, "tpe", "asha", results, f"{name}-pareto-{seed}")
    spent = {key: len(pd.read_csv(ExperimentLayout(folder).curves)) for key, folder in
             (("random", random_dir), ("pareto", pareto_dir))}
    latencies = pd.concat([pd.read_csv(ExperimentLayout(folder).trials)["latency_ms"]
                           for folder in (random_dir, pareto_dir)])
    reference = 1.1 * float(latencies.max())
    equal = min(spent.values())
    return {
        "dataset": name, "seed": seed, "trial_epochs_compared": equal,
        "random_trial_epochs": spent["random"], "pareto_trial_epochs": spent["pareto"],
        "random_samples": samples, "pareto_samples": 2 * samples,
        "random_hypervolume": hypervolume_at(random_dir, equal, reference),
        "pareto_hypervolume": hypervolume_at(pareto_dir, equal, reference),
        "compute_saved": 1 - (spent["pareto"] / (2 * samples)) / (spent["random"] / samples),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pareto_search", description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["demo", "dubai_aerial"], choices=sorted(DATASETS))
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--samples", type=int, default=8, help="random search's samples (the Pareto search: twice)")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "pareto_search.json")
    parser.add_argument("--results", type=Path, help="keep the experiments here (default: a temporary folder)")
    args = parser.parse_args(argv)
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        results = args.results or Path(folder)
        for name in args.datasets:
            for seed in range(args.seeds):
                rows.append(compare(name, DATASETS[name], args.samples, args.epochs, seed, results))
                atomic_write_text(args.output, json.dumps(rows, indent=2))
    print("| dataset | seed | trial-epochs compared | hypervolume random | hypervolume Pareto | trial-epochs per "
          "sample random / Pareto | compute saved |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['dataset']} | {row['seed']} | {row['trial_epochs_compared']} | "
              f"{row['random_hypervolume']:.4f} | {row['pareto_hypervolume']:.4f} | "
              f"{row['random_trial_epochs'] / row['random_samples']:.2f} / "
              f"{row['pareto_trial_epochs'] / row['pareto_samples']:.2f} | {row['compute_saved']:.0%} |")


if __name__ == "__main__":
    main()
