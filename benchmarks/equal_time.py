"""Benchmark 6: what the search adds. Three arms at the same wall-clock budget T, paired by seed:

- ``searchseg``: ``python -m searchseg.run --budget T`` as a user runs it (a fresh process; its imports, data check,
  Ray start and report all inside the measured seconds);
- ``no_search``: the same command with ``--samples 0``: the search switched off, the space's first start
  configuration trained by the same planner for the whole budget (searchseg's own default);
- ``recipe``: the seed notebooks' recipe (U-Net/ResNet-34 from scratch, Adam 1e-3, CE + Dice, random flips, 128 px,
  batch 8) in a plain hand-written loop on train+val with all threads for exactly the seconds the search run took
  (its own imports and decoding not counted: the baseline gets the benefit of the doubt).

All three are scored on the same test images with the same metric code; nothing is chosen by test scores. Every
run is kept: ``benchmarks/equal_time.json`` gets each new row appended (with its commit and start time), never
replaced, and the table reports every three-arm row.

``python -m benchmarks.equal_time --budget 300 --seeds 3`` prints the table and appends to the JSON.

``--holdout`` decides rules without the test split: the runs never see the test images; their own test split is a
check split of whole groups (a Dubai tile, a CHASE child's two eyes) carved from the training images with the seed,
as large as the test split. The final stage records both of its candidates' scores on it (the continued trial's
own state and the last epoch), so the keep-the-trial rule is compared with keeping the last epoch on images that
neither chose it nor will report it (``holdout_table``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from searchseg.data import load_from_config
from searchseg.data.balance import median_frequency_weights
from searchseg.data.loader import SegmentationData
from searchseg.io_utils import atomic_write_text
from searchseg.layout import ExperimentLayout
from searchseg.spaces.config import TrialConfig
from searchseg.spaces.space import SearchSpace
from searchseg.training.losses import LossContext, LossMix
from searchseg.training.metrics import SegmentationMetrics, predict_labels
from searchseg.training.models import create_model
from searchseg.training.normalisation import IMAGENET_MEAN, IMAGENET_STD

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
# name -> the --set keys (and --data/--class-map) of the dataset; image_size as in the recipe.
DATASETS = {
    "demo": {},
    "dubai_aerial": {"data": SHARED / "dubai_aerial", "class_map": SHARED / "dubai_aerial" / "label_mapping.json",
                     "group_by": "folder"},
    "chase_db1": {"data": SHARED / "chase_db1", "mask_suffix": "_1stHO"},
    # The same pixels with validation split so that it has at least 5 independent groups, where the planner searches
    # (a split by crop, not by tile; a quarter of CHASE's images): like a user's data with more validation images.
    "dubai_aerial_by_crop": {"data": SHARED / "dubai_aerial",
                             "class_map": SHARED / "dubai_aerial" / "label_mapping.json", "group_by": "none"},
    "chase_db1_wide_val": {"data": SHARED / "chase_db1", "mask_suffix": "_1stHO", "val_fraction": 0.25},
}


# How a check split is carved without leaking into training: a Dubai tile's crops, a child's left and right eye.
def _dubai_tile(name: str) -> str:
    return name.split("/")[0]


def _chase_child(name: str) -> str:
    return name.rstrip("LR")


CHECK_GROUP = {"dubai_aerial": _dubai_tile, "dubai_aerial_by_crop": _dubai_tile,
               "chase_db1": _chase_child, "chase_db1_wide_val": _chase_child}
BASE_SETS = ("dubai_aerial", "chase_db1")  # what a benchmark runs when --datasets does not say
IMAGE_SIZE = 128
TRIAL_COLUMNS = ("trial_id", "status", "arch", "encoder", "lr", "loss.ce", "loss.dice", "loss.focal", "loss.lovasz",
                 "epochs_run", "best_val_miou", "last_val_miou")


def run_command(dataset: dict, budget: float, seed: int, results: Path, name: str,
                search: bool = True, space: str | None = None) -> list[str]:
    command = [sys.executable, "-m", "searchseg.run", *(["--space", space] if space else []),
               "--budget", str(budget), "--results", str(results),
               "--name", name, "--seed", str(seed), "--quiet", "--set", f"image_size={IMAGE_SIZE}", f"seed={seed}"]
    for key, value in dataset.items():
        if key in ("data", "class_map"):
            command += [f"--{key.replace('_', '-')}", str(value)]
        else:
            command += ["--set", f"{key}={value}"]
    return command + ([] if search else ["--samples", "0"])


def searchseg_run(dataset: dict, budget: float, seed: int, results: Path, name: str, search: bool = True,
                  space: str | None = None) -> dict:
    started = time.perf_counter()
    done = subprocess.run(run_command(dataset, budget, seed, results, name, search, space), capture_output=True,
                          text=True)
    seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"searchseg run failed ({done.returncode}): {done.stderr[-2000:]}")
    metrics = json.loads(ExperimentLayout(results / name).final().metrics.read_text())
    run = json.loads(ExperimentLayout(results / name).run.read_text())
    trials = pd.read_csv(ExperimentLayout(results / name).trials)  # kept so a lost point can be explained later
    columns = [c for c in TRIAL_COLUMNS if c in trials.columns]
    return {"seconds": seconds, "test_miou": metrics["test_miou"], "plan": run["plan"],
            "final_training": metrics.get("final_training"), "trials": trials[columns].to_dict("records"),
            "best_config": ExperimentLayout(results / name).best_config.read_text()}


def fixed_recipe(data: SegmentationData, seconds: float, seed: int) -> dict:
    """The seed notebooks' recipe in a plain loop, trained on train+val until ``seconds`` have passed."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    torch.set_num_threads(os.cpu_count() or 1)
    classes = 1 if data.binary else data.num_classes
    model = create_model("unet", "resnet34", "none", 3, classes)
    context = LossContext(data.binary, data.num_classes, data.ignore_index,
                          median_frequency_weights(data.class_frequencies("train")))
    loss_fn = LossMix({"ce": 1.0, "dice": 1.0}, context)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1) * 255
    std = torch.tensor(IMAGENET_STD).view(1, -1, 1, 1) * 255
    indices = np.concatenate([data.splits["train"], data.splits["val"]])
    steps, order, started = 0, np.array([], dtype=int), time.perf_counter()
    model.train()
    while time.perf_counter() - started < seconds:
        if len(order) < 8:
            order = np.concatenate([order, rng.permutation(indices)])
        batch, order = order[:8], order[8:]
        images = torch.from_numpy(data.images[batch]).permute(0, 3, 1, 2).float()
        masks = torch.from_numpy(data.masks[batch]).long()
        if rng.random() < 0.5:
            images, masks = images.flip(-1), masks.flip(-1)
        if rng.random() < 0.5:
            images, masks = images.flip(-2), masks.flip(-2)
        loss = loss_fn(model((images - mean) / std), masks)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    model.eval()
    metrics = SegmentationMetrics(data.class_names, data.ignore_index)
    with torch.no_grad():
        test = data.splits["test"]
        for start in range(0, len(test), 8):
            batch = test[start:start + 8]
            images = torch.from_numpy(data.images[batch]).permute(0, 3, 1, 2).float()
            metrics.update(predict_labels(model((images - mean) / std)), torch.from_numpy(data.masks[batch]).long())
    return {"seconds": time.perf_counter() - started, "steps": steps, "test_miou": metrics.compute()["miou"]}


def holdout_dataset(name: str, dataset: dict, data: SegmentationData, seed: int, folder: Path) -> dict:
    """The dataset as a YAML with fixed splits: the test images left out, the validation split as it is, and a
    check split (the runs' "test") of whole groups drawn from the training images with ``seed``, at least as many
    images as the test split; the rest trains."""
    names = data.names
    train = [names[i] for i in data.splits["train"]]
    groups = sorted({CHECK_GROUP[name](n) for n in train})
    check: list[str] = []
    for group in np.random.default_rng(seed).permutation(groups):
        if len(check) >= len(data.splits["test"]):
            break
        check += [n for n in train if CHECK_GROUP[name](n) == group]
    folder.mkdir(parents=True, exist_ok=True)
    lists = {"train": [n for n in train if n not in check], "val": [names[i] for i in data.splits["val"]],
             "test": check}
    for split, listed in lists.items():
        (folder / f"{split}.txt").write_text("".join(f"{n}\n" for n in listed))
    spec = {"path": str(Path(dataset["data"]).resolve()), "splits": {s: f"{s}.txt" for s in lists},
            **{key: str(Path(value).resolve()) if key == "class_map" else value
               for key, value in dataset.items() if key in ("class_map", "mask_suffix", "group_by")}}
    (folder / "dataset.yaml").write_text(yaml.safe_dump(spec))
    return {"data": folder / "dataset.yaml"}


def space_trial_config(space: SearchSpace, dataset: dict, searched: dict, **settings) -> TrialConfig:
    """A trial of ``space`` on ``dataset`` as the search builds one: the space's fixed keys, the data set's, the
    searched ones, then the benchmark's own ``settings`` (epochs, seed...)."""
    return TrialConfig.from_flat({**space.fixed, **{k: str(v) for k, v in dataset.items()}, **searched, **settings})


def decoded(dataset: dict, image_size: int = IMAGE_SIZE) -> SegmentationData:
    flat = {key: str(value) for key, value in dataset.items()}
    return load_from_config(TrialConfig.from_flat({**flat, "image_size": image_size}), progress=False)


def available(names: list[str]) -> list[tuple[str, dict]]:
    """The named datasets that are on this machine, saying which are skipped."""
    present = []
    for name in names:
        dataset = DATASETS[name]
        if "data" in dataset and not Path(dataset["data"]).is_dir():
            print(f"skipping {name}: {dataset['data']} is absent")
        else:
            present.append((name, dataset))
    return present


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                          cwd=Path(__file__).parent)
    return done.stdout.strip() or "unknown"


def compare(names: list[str], budgets: list[float], seeds: range, results: Path,
            on_row=lambda rows: None, space: str | None = None, search_only: bool = False,
            holdout: bool = False) -> list[dict]:
    """Run the three arms for every dataset, budget and seed; ``on_row(rows)`` after each (to save as it goes).
    ``space``: a space file for both searchseg arms (default: the bundled arch_loss); ``search_only``: the
    search arm alone, to try a space whose first start configuration (all the no-search arm trains) is unchanged
    (its rows stay out of the three-arm table); ``holdout``: the searchseg arms on ``holdout_dataset``, no recipe."""
    rows = []
    for name, dataset in available(names):
        data = decoded(dataset)
        for budget in budgets:
            for seed in seeds:
                started = time.strftime("%Y-%m-%d %H:%M:%S")
                used = holdout_dataset(name, dataset, data, seed, results / f"check-{name}-{seed}") if holdout \
                    else dataset
                ours = searchseg_run(used, budget, seed, results, f"{name}-{budget:g}-{seed}", space=space)
                row = {"dataset": name, "budget": budget, "seed": seed, "commit": commit(), "started": started,
                       **({"space": Path(space).name} if space else {}), **({"holdout": True} if holdout else {}),
                       "searchseg": ours}
                line = f"{name} T={budget:g} seed {seed}: searchseg {ours['test_miou']:.4f} in {ours['seconds']:.1f} s"
                if not search_only:
                    default = searchseg_run(used, budget, seed, results, f"{name}-{budget:g}-{seed}-no-search",
                                            search=False, space=space)
                    row.update(no_search=default)
                    line += f" | no search {default['test_miou']:.4f} in {default['seconds']:.1f} s"
                if not (search_only or holdout):
                    recipe = fixed_recipe(data, ours["seconds"], seed)
                    row.update(recipe=recipe)
                    line += f" | recipe {recipe['test_miou']:.4f} ({recipe['steps']} steps)"
                rows.append(row)
                on_row(rows)
                print(line, flush=True)
    return rows


def lacking_no_search(rows: list[dict], names: list[str], budgets: list[float], seeds: range,
                      space: str | None = None) -> list[dict]:
    """The ``--holdout --search-only`` rows of ``space`` (a space file; None: the bundled arch_loss) for these
    datasets, budgets and seeds, which have no no-search arm: ``--pair-no-search`` runs it afterwards on the same
    check split (carved by the seed alone), so a search arm measured earlier gets its pair without being run
    again."""
    space_name = Path(space).name if space else None
    return [row for row in rows if row.get("holdout") and "no_search" not in row and row.get("space") == space_name
            and row["dataset"] in names and row["budget"] in budgets and row["seed"] in seeds]


def pair_no_search(rows: list[dict], names: list[str], budgets: list[float], seeds: range, results: Path,
                   on_row=lambda rows: None, space: str | None = None) -> None:
    """Run the no-search arm (``space``'s first start configuration) for ``lacking_no_search`` rows and add it to
    each row (its own commit and start inside it, as it ran later than the search arm); ``on_row(rows)`` after
    each."""
    for name, dataset in available(names):
        wanted = lacking_no_search(rows, [name], budgets, seeds, space)
        if not wanted:
            continue  # nothing to pair: the dataset is not decoded
        data = decoded(dataset)
        for row in wanted:
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            label = f"{name}-{row['budget']:g}-{row['seed']}-no-search"
            used = holdout_dataset(name, dataset, data, row["seed"], results / f"check-{name}-{row['seed']}")
            default = searchseg_run(used, row["budget"], row["seed"], results, label, search=False, space=space)
            row["no_search"] = {**default, "commit": commit(), "started": started}
            on_row(rows)
            print(f"{name} T={row['budget']:g} seed {row['seed']}: searchseg {row['searchseg']['test_miou']:.4f} "
                  f"(earlier) | no search {default['test_miou']:.4f} in {default['seconds']:.1f} s", flush=True)


def paired_difference(group: list[dict], other: str) -> tuple[float, float, str]:
    """Mean and spread (population sd) of searchseg - ``other`` over the seeds, and the verdict."""
    return paired_verdict([r["searchseg"]["test_miou"] - r[other]["test_miou"] for r in group])


def paired_verdict(differences: list[float]) -> tuple[float, float, str]:
    """Mean and spread (population sd) of differences paired by seed, and the verdict: ahead or behind when the
    mean is beyond the spread, else a tie."""
    mean = statistics.fmean(differences)
    if len(differences) < 2:
        return mean, float("nan"), "n/a (1 run)"
    spread = statistics.pstdev(differences)
    return mean, spread, "ahead" if mean > spread else "behind" if -mean > spread else "tie"


def paired_cell(differences: list[float]) -> str:
    """A table cell: the paired mean difference, its spread and the verdict."""
    mean, spread, verdict = paired_verdict(differences)
    return f"{mean:+.3f} {verdict}" if math.isnan(spread) else f"{mean:+.3f} ± {spread:.3f} {verdict}"


def appended_rows(path: Path, indent: int | None = 1) -> tuple[list[dict], Callable[[dict], None]]:
    """The rows a benchmark's JSON file already holds, and a function that appends one and saves them all (after
    every row: a run cut short keeps what it measured; nothing is ever replaced). ``indent=None`` writes one line,
    for rows that hold long arrays."""
    rows = json.loads(path.read_text()) if path.is_file() else []

    def append(row: dict) -> None:
        rows.append(row)
        atomic_write_text(path, json.dumps(rows, indent=indent))

    return rows, append


def check_split_runs(names: list[str], seeds: range, prefix: str,
                     run: Callable[[str, dict, SegmentationData, int, Path], dict],
                     on_row: Callable[[dict], None]) -> Iterator[dict]:
    """For each named dataset on this machine and each seed: ``run(name, dataset, decoded data, seed, folder)`` in
    a temporary folder of its own; every row, stamped with the commit and its start, is saved with ``on_row`` and
    then yielded (to print)."""
    for name, dataset in available(names) if seeds else []:
        full = decoded(dataset)
        for seed in seeds:
            started = time.strftime("%Y-%m-%d %H:%M:%S")
            with tempfile.TemporaryDirectory(prefix=prefix) as folder:
                row = {"commit": commit(), "started": started, **run(name, dataset, full, seed, Path(folder))}
            on_row(row)
            yield row


def check_split_main(prog: str, description: str | None, output: str, first_seed: int,
                     measure: Callable[[list[str], range, float, Callable[[dict], None]], object],
                     table: Callable[[list[dict]], str]) -> None:
    """The command line of a benchmark on the ``--holdout`` check splits: which datasets, seeds and budget; every
    row appended to ``output`` (beside this module) as it is measured, then the table of all rows printed."""
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", choices=sorted(CHECK_GROUP), default=sorted(BASE_SETS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=first_seed, help="run seeds first-seed .. +seeds-1")
    parser.add_argument("--budget", type=float, default=300.0, help="T in seconds")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / output)
    args = parser.parse_args()
    rows, save = appended_rows(args.output)
    measure(args.datasets, range(args.first_seed, args.first_seed + args.seeds), args.budget, save)
    print(table(rows))


def table(rows: list[dict]) -> str:
    """Every three-arm row, grouped by dataset and T: means, paired differences and budget use (wall / T)."""
    rows = [r for r in rows if "recipe" in r and "no_search" in r]
    lines = ["| dataset | T | runs | wall / T | search | no search | recipe | search - no search | "
             "search - recipe |", "|---|---|---|---|---|---|---|---|---|"]
    for key in sorted({(r["dataset"], r["budget"]) for r in rows}):
        group = [r for r in rows if (r["dataset"], r["budget"]) == key]
        use = [r[arm]["seconds"] / key[1] for r in group for arm in ("searchseg", "no_search")]
        means = {arm: statistics.fmean(r[arm]["test_miou"] for r in group)
                 for arm in ("searchseg", "no_search", "recipe")}
        cells = [paired_cell([r["searchseg"]["test_miou"] - r[arm]["test_miou"] for r in group])
                 for arm in ("no_search", "recipe")]
        lines.append(f"| {key[0]} | {key[1]:g} s | {len(group)} | {min(use):.2f}-{max(use):.2f} | "
                     f"{means['searchseg']:.3f} | {means['no_search']:.3f} | {means['recipe']:.3f} | "
                     f"{cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def variant_table(rows: list[dict], space: str) -> str:
    """Search-only runs of a space variant against the latest three-arm run of the same dataset, budget and seed:
    validation mIoU of the kept final model (what a rule may be chosen on) and test mIoU (reported, not chosen on),
    with the paired mean differences over the seeds."""
    def key(row: dict) -> tuple:
        return row["dataset"], row["budget"], row["seed"]

    def kept_val(arm: dict) -> float:
        return float((arm.get("final_training") or {}).get("kept_val_miou", float("nan")))

    # the latest three-arm run per key
    earlier = {key(r): r for r in rows if "recipe" in r and "no_search" in r and "space" not in r}
    pairs = [(r, earlier[key(r)]) for r in rows if r.get("space") == space and key(r) in earlier]
    lines = [f"| dataset | T | seed | {space}: val, test | search: val, test | no search: val, test | continued |",
             "|---|---|---|---|---|---|---|"]
    for variant, base in pairs:
        ours = variant["searchseg"]
        continued = (ours.get("final_training") or {}).get("trial_choice", {}).get("trial", "")
        chosen = next((f"{t['arch']}/{t['encoder']} lr {t['lr']:.2g}" for t in ours.get("trials", [])
                       if t.get("trial_id") == continued), "no trial")
        cells = [f"{kept_val(arm):.3f}, {arm['test_miou']:.3f}" for arm in (ours, base["searchseg"], base["no_search"])]
        lines.append(f"| {variant['dataset']} | {variant['budget']:g} s | {variant['seed']} | {' | '.join(cells)} | "
                     f"{chosen} |")
    for dataset, budget in sorted({(v["dataset"], v["budget"]) for v, _ in pairs}):
        group = [(v, b) for v, b in pairs if (v["dataset"], v["budget"]) == (dataset, budget)]
        for other in ("searchseg", "no_search"):
            for measure, value in (("val", kept_val), ("test", lambda arm: arm["test_miou"])):
                mean, spread, _ = paired_verdict([value(v["searchseg"]) - value(b[other]) for v, b in group])
                lines.append(f"- {dataset} {budget:g} s, {len(group)} seeds: {space} - "
                             f"{'search' if other == 'searchseg' else 'no search'} ({measure}) "
                             f"{mean:+.3f} ± {spread:.3f}")
    return "\n".join(lines)


def holdout_table(rows: list[dict]) -> str:
    """The ``--holdout`` runs: the final stage's two candidates on the check split (the continued trial's own state
    and the last epoch), which the current rule kept, and whether validation's preference agreed with the check's."""
    rows = [r for r in rows if r.get("holdout")]
    lines = ["| dataset | T | seed | trial state: val win rate | check: trial state | check: last epoch | kept | "
             "kept - last (check) | validation agrees |", "|---|---|---|---|---|---|---|---|---|"]
    differences, agreements = [], []
    for row in rows:
        final = row["searchseg"].get("final_training") or {}
        if "last_test_miou" not in final:
            continue  # the deadline passed before a first final epoch: one candidate only
        trial, last, win_rate = final["trial_test_miou"], final["last_test_miou"], final["trial_win_rate"]
        kept = "trial state" if final["kept_epoch"] == final["start_epoch"] else "last epoch"
        difference = (trial if kept == "trial state" else last) - last
        agrees = (win_rate > 0.5) == (trial > last)
        differences.append(difference)
        agreements.append(agrees)
        lines.append(f"| {row['dataset']} | {row['budget']:g} s | {row['seed']} | {win_rate:.0%} | {trial:.3f} | "
                     f"{last:.3f} | {kept} | {difference:+.3f} | {'yes' if agrees else 'no'} |")
    if differences:
        lines.append(f"- {len(differences)} runs: the current rule's kept model - the last epoch on the check split "
                     f"{statistics.fmean(differences):+.4f} (mean); validation's preference agreed with the check "
                     f"split's in {sum(agreements)} of {len(agreements)}")
    for dataset, budget in sorted({(r["dataset"], r["budget"]) for r in rows if "no_search" in r}):
        group = [r for r in rows if (r["dataset"], r["budget"]) == (dataset, budget) and "no_search" in r]
        gain, spread, verdict = paired_difference(group, "no_search")
        lines.append(f"- {dataset} {budget:g} s, {len(group)} seeds: search - no search on the check split "
                     f"{gain:+.3f} ± {spread:.3f} {verdict}")
    return "\n".join(lines)


def chart(rows: list[dict]) -> str:
    """Test mIoU against the budget T, one Mermaid chart per dataset (GitHub draws them in RESULTS.md):
    bars for searchseg, a line for no search and one for the recipe, means over the three-arm runs."""
    rows = [r for r in rows if "recipe" in r and "no_search" in r]
    charts = []
    for dataset in sorted({r["dataset"] for r in rows}):
        budgets = sorted({r["budget"] for r in rows if r["dataset"] == dataset})
        means = {side: [statistics.fmean(r[side]["test_miou"] for r in rows
                                         if (r["dataset"], r["budget"]) == (dataset, budget)) for budget in budgets]
                 for side in ("searchseg", "no_search", "recipe")}
        low = max(0.0, math.floor(min(min(v) for v in means.values()) * 20 - 1) / 20)
        high = min(1.0, math.ceil(max(max(v) for v in means.values()) * 20 + 1) / 20)
        charts.append("\n".join([
            "```mermaid", "xychart-beta",
            f'    title "{dataset}: test mIoU at equal wall-clock time (bars search, lines no search, recipe)"',
            f'    x-axis "budget T (s)" [{", ".join(f"{b:g}" for b in budgets)}]',
            f'    y-axis "test mIoU" {low:.2f} --> {high:.2f}',
            f'    bar [{", ".join(f"{v:.3f}" for v in means["searchseg"])}]',
            f'    line [{", ".join(f"{v:.3f}" for v in means["no_search"])}]',
            f'    line [{", ".join(f"{v:.3f}" for v in means["recipe"])}]', "```"]))
    return "\n\n".join(charts)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.equal_time", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", nargs="+", type=float, default=[300.0], help="T in seconds (several allowed)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. first-seed+seeds-1")
    parser.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=["demo", *sorted(BASE_SETS)])
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "equal_time.json")
    parser.add_argument("--space", help="space file for the searchseg arms (default: the bundled arch_loss)")
    parser.add_argument("--search-only", action="store_true",
                        help="run the search arm alone (a space whose first start configuration is unchanged)")
    parser.add_argument("--holdout", action="store_true",
                        help="the searchseg arms (no recipe) with a check split carved from the training images as "
                             "their test split, the real test images left out: to decide a rule without test scores")
    parser.add_argument("--pair-no-search", action="store_true",
                        help="run only the no-search arm of the --holdout --search-only rows in OUTPUT (these "
                             "datasets, budgets, seeds and --space), on the same check split, and add it to each "
                             "row")
    args = parser.parse_args()
    if args.holdout and set(args.datasets) - set(CHECK_GROUP):
        parser.error(f"--holdout carves its check split from {', '.join(CHECK_GROUP)} only")
    previous = json.loads(args.output.read_text()) if args.output.is_file() else []

    def save(rows: list[dict]) -> None:  # after every row, appended: a cut-short run keeps what it measured
        atomic_write_text(args.output, json.dumps(previous + rows, indent=1))

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    if args.pair_no_search:
        if not lacking_no_search(previous, args.datasets, args.budget, seeds, args.space):
            parser.exit(2, f"error: {args.output} has no --holdout --search-only row of "
                           f"{Path(args.space).name if args.space else 'arch_loss'} for these datasets, budgets and "
                           "seeds that lacks its no-search arm: give the search run's --space, --budget, --seeds "
                           "and --first-seed\n")
        with tempfile.TemporaryDirectory(prefix="searchseg-equal-time-") as folder:
            pair_no_search(previous, args.datasets, args.budget, seeds, Path(folder), lambda rows: save([]),
                           args.space)
        print(holdout_table(previous))
        return
    with tempfile.TemporaryDirectory(prefix="searchseg-equal-time-") as folder:
        rows = compare(args.datasets, args.budget, seeds, Path(folder), save, args.space, args.search_only,
                       args.holdout)
    if args.holdout:
        print(holdout_table(previous + rows))
        return
    print(table(previous + rows))
    print(chart(previous + rows))
    if args.space:
        print(variant_table(previous + rows, Path(args.space).name))

if __name__ == "__main__":
    main()
