"""The benchmarks. Each one measures searchseg and its baseline in the same process on the same machine
and returns one row: both measurements, their ratio, the target and whether it is met.

Data: ``../shared/datasets/dubai_aerial`` (with its ``label_mapping.json``, tiles kept whole) when present,
else the built-in demo (the same tiles, shrunk), at a small working size so CPU runs take minutes.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd
import ray
import segmentation_models_pytorch as smp
import torch
from torch.utils.data import DataLoader

from benchmarks import equal_time
from benchmarks import gpu as gpu_benchmark
from searchseg.api import OutputConfig, Search, SearchConfig
from searchseg.data import load_from_config
from searchseg.data.loader import SegmentationData
from searchseg.data.torch_dataset import ArrayDataset
from searchseg.layout import ExperimentLayout
from searchseg.machine import available_cpus
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import load_space
from searchseg.training.engine import Trainer, fit
from searchseg.training.normalisation import IMAGENET_MEAN, IMAGENET_STD
from searchseg.tuning.search import run_search

DUBAI = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dubai_aerial"


@dataclass(frozen=True)
class Scale:
    image_size: int
    samples: int
    epochs: int  # ASHA's grace period and reduction factor are the space's (arch_loss: 1 and 3)
    seeds: int  # search-efficiency repetitions
    quality_seeds: int  # repetitions of the equal-time quality comparison
    overhead_trials: int
    overhead_epochs: int
    throughput_epochs: int
    budget_seconds: float  # T of the equal-time quality comparison


QUICK = Scale(64, 4, 2, 1, 1, 2, 1, 2, 60)
FULL = Scale(128, 8, 6, 3, 3, 4, 2, 4, 300)


@dataclass
class Row:
    name: str
    searchseg: str
    baseline: str
    ratio: float | None
    target: str
    met: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return "n/a" if self.met is None else ("pass" if self.met else "falls short")


def data_settings() -> dict:
    if DUBAI.is_dir():
        return {"data": str(DUBAI), "class_map": str(DUBAI / "label_mapping.json"), "group_by": "folder"}
    return {}


class Bench:
    """Shared state of one benchmark run: the data, a results folder, and the searches already run."""

    def __init__(self, scale: Scale) -> None:
        self.scale = scale
        self.workdir = Path(tempfile.mkdtemp(prefix="searchseg-bench-"))
        self.fixed = {**data_settings(), "image_size": scale.image_size}
        self.data = load_from_config(TrialConfig.from_flat(self.fixed), progress=False)
        self.searches: dict[tuple, Path] = {}

    def search(self, searcher: str, early_stopping: bool, seed: int, space: str = "arch_loss", samples=None,
               epochs=None, concurrency=None) -> Path:
        key = (searcher, early_stopping, seed, space, samples, epochs)
        if key not in self.searches:
            s = self.scale
            name = f"{space}-{searcher}-{'asha' if early_stopping else 'full'}-{seed}-{samples}-{epochs}"
            options = Search(
                space=space, data=self.fixed.get("data"), class_map=self.fixed.get("class_map"),
                fixed={k: v for k, v in self.fixed.items() if k not in ("data", "class_map")},
                search=SearchConfig(samples=samples or s.samples, epochs=epochs or s.epochs, seed=seed,
                                    searcher=searcher, scheduler="asha" if early_stopping else "none",
                                    concurrency=concurrency),
                output=OutputConfig(name=name, results_dir=self.workdir, verbose=0),
            )
            started = time.perf_counter()
            outcome = run_search(options, echo=lambda *_: None)
            (outcome.experiment_dir / "wall_seconds.txt").write_text(str(time.perf_counter() - started))
            self.searches[key] = outcome.experiment_dir
        return self.searches[key]


def _curves(folder: Path) -> pd.DataFrame:
    return pd.read_csv(ExperimentLayout(folder).curves).sort_values("reported_at").reset_index(drop=True)


def search_efficiency(bench: Bench) -> list[Row]:
    """1 and 2: TPE+ASHA against random search without early stopping, same space, trials and data."""
    s = bench.scale
    ratios, tpe_epochs, random_epochs, budgets = [], [], [], []
    for seed in range(s.seeds):
        tpe = _curves(bench.search("tpe", True, seed))
        rand = _curves(bench.search("random", False, seed))
        threshold = 0.97 * rand["val_miou"].max()
        reached = np.flatnonzero(tpe["val_miou"].cummax().to_numpy() >= threshold)
        spent = int(reached[0]) + 1 if len(reached) else None
        tpe_epochs.append(spent)
        random_epochs.append(len(rand))
        ratios.append(spent / len(rand) if spent else float("inf"))
        budgets.append(len(tpe) / (s.samples * s.epochs))
    ratio = statistics.median(ratios)
    settings = load_space("arch_loss").settings
    settings.samples, settings.epochs = s.samples, s.epochs
    theory = settings.expected_trial_epochs() / (s.samples * s.epochs)
    used = statistics.median(budgets)
    reached_text = ", ".join(str(e) if e else "never" for e in tpe_epochs)
    return [
        Row("1. search efficiency: trial-epochs to reach 97% of random search's best mIoU",
            f"TPE+ASHA: {reached_text}", f"random, no early stopping: {', '.join(map(str, random_epochs))}",
            ratio, "<= 0.33", ratio <= 1 / 3, f"median over {s.seeds} seeds of the per-seed ratio"),
        Row("2. ASHA budget: trial-epochs used / (trials x max epochs)", f"{used:.2f}",
            f"successive-halving theory {theory:.2f} (grace {settings.grace_period}, reduction "
            f"{settings.reduction_factor})",
            used / theory, "0.75-1.25 of theory", 0.75 <= used / theory <= 1.25),
    ]


def _pool_init(data: SegmentationData) -> None:
    global _POOL_DATA
    torch.set_num_threads(1)
    _POOL_DATA = data


def _pool_fit(flat: dict) -> float:
    return fit(TrialConfig.from_flat(flat), _POOL_DATA, progress=False).best_miou


def tune_overhead(bench: Bench) -> list[Row]:
    """3: N short trials through searchseg against the same trainings in a plain process pool."""
    s = bench.scale
    started = time.perf_counter()
    folder = bench.search("random", False, 0, space="lr_wd", samples=s.overhead_trials, epochs=s.overhead_epochs,
                          concurrency=2)
    searchseg_seconds = time.perf_counter() - started
    trials = pd.read_csv(ExperimentLayout(folder).trials)
    fixed = {**load_space("lr_wd").fixed, **bench.fixed, "epochs": s.overhead_epochs}
    searched = list(load_space("lr_wd").params)
    configs = [{**fixed, **{k: v for k, v in row.items() if k in searched and pd.notna(v)}}
               for row in trials.to_dict("records")]
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn"), initializer=_pool_init,
                             initargs=(bench.data,)) as pool:
        list(pool.map(_pool_fit, configs))
    pool_seconds = time.perf_counter() - started
    ratio = searchseg_seconds / pool_seconds
    per_trial = (searchseg_seconds - pool_seconds) / len(configs)
    return [Row(f"3. Tune overhead: wall time of {len(configs)} trials x {s.overhead_epochs} epochs, 2 at a time",
                f"{searchseg_seconds:.1f} s", f"process pool {pool_seconds:.1f} s", ratio, "<= 1.2", ratio <= 1.2,
                f"{per_trial:+.1f} s per trial (data decoding, Ray set-up, per-epoch checkpoints included)")]


def _hand_loop_images_per_second(data: SegmentationData, config: TrialConfig, epochs: int) -> float:
    torch.manual_seed(0)
    model = smp.Unet(config.encoder, encoder_weights=None, classes=data.num_classes)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255
    images = torch.from_numpy(data.images[data.splits["train"]]).permute(0, 3, 1, 2)
    masks = torch.from_numpy(data.masks[data.splits["train"]]).long()
    seen, elapsed = 0, 0.0
    for epoch in range(epochs + 1):
        started = time.perf_counter()
        order = torch.randperm(len(images))
        count = 0
        for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
            batch = order[start:start + config.batch_size]
            logits = model((images[batch].float() - mean) / std)
            loss = torch.nn.functional.cross_entropy(logits, masks[batch], ignore_index=data.ignore_index)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            count += len(batch)
        if epoch:  # the first epoch warms up
            seen, elapsed = seen + count, elapsed + time.perf_counter() - started
    return seen / elapsed


def throughput(bench: Bench) -> list[Row]:
    """4: images/s of the engine the trainable runs against a minimal hand-written loop, same threads.

    Epochs of the two alternate and the medians are compared, so drifts of a shared machine hit both alike.
    """
    s = bench.scale
    config = TrialConfig.from_flat({**bench.fixed, "arch": "unet", "encoder": "resnet18", "augment": "none",
                                    "epochs": s.throughput_epochs + 1, "batch_size": 8})
    trainer = Trainer(config, bench.data)
    trainer.train_one_epoch()  # warm-up
    engine_rates, hand_rates = [], []
    for _ in range(s.throughput_epochs):
        trainer.epoch += 1
        engine_rates.append(trainer.train_one_epoch()[1])
        hand_rates.append(_hand_loop_images_per_second(bench.data, config, 1))
    engine, hand = statistics.median(engine_rates), statistics.median(hand_rates)
    return [Row("4. training throughput (U-Net/ResNet-18, batch 8)", f"{engine:.2f} img/s",
                f"hand-written loop {hand:.2f} img/s", engine / hand, ">= 0.95", engine / hand >= 0.95,
                f"{torch.get_num_threads()} threads, same process, median of {s.throughput_epochs} alternating "
                "epochs")]


@ray.remote(num_cpus=1)
def _first_batch_from_object_store(box: list, batch_size: int) -> float:
    started = time.perf_counter()
    data = ray.get(box[0])
    next(iter(DataLoader(ArrayDataset(data.images, data.masks, data.splits["train"]), batch_size=batch_size)))
    return time.perf_counter() - started


@ray.remote(num_cpus=1)
def _first_batch_from_files(flat: dict, batch_size: int) -> float:
    started = time.perf_counter()
    data = load_from_config(TrialConfig.from_flat(flat), progress=False)
    next(iter(DataLoader(ArrayDataset(data.images, data.masks, data.splits["train"]), batch_size=batch_size)))
    return time.perf_counter() - started


def startup(bench: Bench) -> list[Row]:
    """5: a trial's time to its first batch, data shared through the object store against decoding files."""
    box = [ray.put(bench.data)]
    ray.get(_first_batch_from_object_store.remote(box, 8))  # start the worker process before timing
    shared = statistics.median(ray.get(_first_batch_from_object_store.remote(box, 8)) for _ in range(3))
    decoded = statistics.median(ray.get(_first_batch_from_files.remote(bench.fixed, 8)) for _ in range(3))
    return [Row("5. trial start-up: time to the first batch", f"shared in-memory data {shared * 1000:.0f} ms",
                f"decoding {len(bench.data.names)} files {decoded * 1000:.0f} ms", decoded / shared, ">= 10",
                decoded / shared >= 10, "ratio = baseline / searchseg (higher is better)")]


def quality(bench: Bench) -> list[Row]:
    """6: ``run --budget T`` against the same run with the search off and the seed notebooks' recipe, same seconds."""
    s = bench.scale
    name = "dubai_aerial" if DUBAI.is_dir() else "demo"
    rows = equal_time.compare([name], [s.budget_seconds], s.quality_seeds, bench.workdir / "equal-time")
    ours = statistics.fmean(r["searchseg"]["test_miou"] for r in rows)
    (gain, spread, verdict), (recipe_gain, _, _) = (equal_time.paired_difference(rows, arm)
                                                    for arm in ("no_search", "recipe"))
    wall = max(r["searchseg"]["seconds"] for r in rows)
    return [Row(f"6. what the search adds: test mIoU at equal wall-clock time (--budget {s.budget_seconds:g})",
                f"{ours:.3f} in <= {wall:.0f} s",
                f"no search (the space's default, same planner): {ours - gain:.3f}; recipe: {ours - recipe_gain:.3f}",
                ours / (ours - gain) if ours - gain else None, "search - no search above the paired spread",
                None if len(rows) < 2 else verdict == "ahead",
                f"{s.quality_seeds} seeds on {name}; paired spread {spread:.3f}; all datasets: "
                "python -m benchmarks.equal_time")]


def gpu(bench: Bench) -> list[Row]:
    """7: bf16 autocast + channels_last against fp32 on a GPU (``benchmarks.gpu``); skipped without one."""
    if not torch.cuda.is_available():
        return [Row("7. GPU: bf16 + channels_last vs fp32 (images/s)", "not measured", "not measured", None, ">= 1",
                    None, "no CUDA GPU on this machine; python -m benchmarks.gpu on one")]
    rates = {bf16: gpu_benchmark.images_per_second(bench.fixed, bench.data, bf16) for bf16 in (True, False)}
    return [Row("7. GPU: bf16 + channels_last vs fp32 (images/s)", f"{rates[True]:.1f} img/s",
                f"fp32 {rates[False]:.1f} img/s", rates[True] / rates[False], ">= 1", rates[True] >= rates[False],
                torch.cuda.get_device_name())]


BENCHMARKS = {1: search_efficiency, 3: tune_overhead, 4: throughput, 5: startup, 6: quality, 7: gpu}


def format_table(rows: list[Row]) -> str:
    lines = ["| benchmark | searchseg | baseline | ratio | target | result | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "n/a" if r.ratio is None else ("inf" if r.ratio == float("inf") else f"{r.ratio:.2f}")
        lines.append(f"| {r.name} | {r.searchseg} | {r.baseline} | {ratio} | {r.target} | {r.verdict} | {r.note} |")
    return "\n".join(lines)


def run_all(scale: Scale, only: list[int] | None = None, on_rows=lambda rows: None) -> list[Row]:
    """Run the benchmarks (``only`` these numbers); ``on_rows(rows so far)`` after each one."""
    if not ray.is_initialized():
        ray.init(num_cpus=available_cpus(), include_dashboard=False, log_to_driver=False)
    bench = Bench(scale)
    print(f"data: {bench.data.source}, {len(bench.data.names)} pairs at {scale.image_size} px; scale {scale}")
    rows: list[Row] = []
    for number, benchmark in BENCHMARKS.items():
        if only and number not in only and not (number == 1 and 2 in only):
            continue
        started = time.perf_counter()
        new = benchmark(bench)
        rows += new
        on_rows(rows)
        print(format_table(new).splitlines()[-1] if len(new) == 1 else "\n".join(format_table(new).splitlines()[2:]),
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    print()
    print(format_table(rows))
    return rows


def write_results(rows: list[Row], scale: Scale, path: Path, only: list[int] | None = None) -> None:
    """Write the table; with ``only``, replace just those rows of the table already there."""
    if only and path.is_file():
        lines = path.read_text().splitlines()
        fresh = {r.name.split(".")[0]: format_table([r]).splitlines()[-1] for r in rows}
        lines = [fresh.get(line[2:].split(".")[0], line) if line.startswith("| ") else line for line in lines]
        stamp = time.strftime("%Y-%m-%d %H:%M")
        note = f"Rows {', '.join(fresh)} re-measured on {stamp} with `python -m benchmarks {' '.join(sys.argv[1:])}`."
        lines = [line for line in lines if line != note]  # written again after each benchmark of the run
        path.write_text("\n".join(lines).rstrip("\n") + f"\n\n{note}\n")
        return
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
               f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() else 'no GPU'}; "
               f"Python {platform.python_version()}, torch {torch.__version__}, ray {ray.__version__}")
    text = (f"# Benchmark results\n\nDate: {time.strftime('%Y-%m-%d %H:%M')}  \nMachine: {machine}  \n"
            f"Command: `python -m benchmarks {' '.join(sys.argv[1:])}`  \nScale: {scale}\n\n"
            + format_table(rows) + "\n")
    path.write_text(text)


__all__ = ["FULL", "QUICK", "Row", "Scale", "format_table", "run_all", "write_results"]
