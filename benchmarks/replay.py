"""Replayed searches on recorded learning curves: what a search finds in a space, and whether validation finds it.

``benchmarks.curves`` trained a space's configurations once and recorded every epoch. Here those curves become a
Syne Tune tabular blackbox (one hyperparameter, the configuration's id) and Syne Tune's simulator backend replays
many searches on them in seconds: ASHA (first rung ``--grace-epochs``, reduction 3, trials stopped at
``--max-epochs``; a 600 s plan on a 2-core CPU: 4 and 12 epochs of 15 steps) with random sampling among the
recorded configurations, the space's start configurations first as searchseg's search does, ``CONCURRENT_TRIALS``
trials at a time, each epoch taking ``CONCURRENT_TRIALS`` times its recorded seconds (the curves were recorded with
the whole CPU, a trial of the search gets a share), for ``--search-seconds`` of simulated time. Every replay seed
draws another order of samples, and replay ``r`` follows the curves of training seed ``r`` modulo the seeds
recorded: the default was trained with several seeds, most samples with one, whose curve stands for every seed (so
the replays see how the default's own noise moves ASHA's cuts and the choice; a sample's own noise only where
``benchmarks.curves --seeds-of`` trained it with more seeds).

After each replayed search, every trial that reported is a candidate with its best validation mIoU and its
validation class counts pooled over its last ``RECENT_EPOCHS`` evaluations, and the trial the final model would
continue is chosen by:

- ``best_val``: the highest validation mIoU;
- ``default_unless_clearly_beaten``: searchseg's rule (``selection.choose_trial``), the default unless a trial
  wins on ``CLEARLY_BETTER_WIN_RATE`` of resamples; ``--win-rates`` adds the same rule with other bars
  (``clearly_beaten@0.8``);
- ``oracle``: the trial whose configuration scores highest on the check split at the last recorded epoch (what
  a perfect selection among the trials tried could get; no rule can see it).

Each choice is scored by its configuration's check-split mIoU at the last recorded epoch, minus the default's with
the same training seed (the space's first start configuration: what the no-search arm trains), beside the spread of
the default's own seeds. This ignores what the
search's seconds cost the final training (the no-search default trains for them), so it bounds what a search adds
from above: where it is not positive, no search of this space at this size can pay.

``python -m benchmarks.replay`` prints the tables for the first study in ``benchmarks/curves.json`` (arch_loss on
Dubai); ``python -m benchmarks.replay --space benchmarks/spaces/default_model_tuning.yaml --default-seeds-from
arch_loss`` for the second; ``--dataset chase_db1_wide_val`` with either for CHASE's. 99 replays per search length
(a multiple of the default's 3 seeds), three lengths: about a minute.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import statistics
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import syne_tune.config_space as sp
from syne_tune import StoppingCriterion, Tuner
from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
from syne_tune.blackbox_repository import UserBlackboxBackend
from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
from syne_tune.constants import ST_TUNER_TIME, SYNE_TUNE_ENV_FOLDER
from syne_tune.optimizer.baselines import ASHA
from syne_tune.tuner_callback import TunerCallback

from benchmarks.curves import OUTPUT as CURVES
from searchseg.training.class_counts import CLEARLY_BETTER_WIN_RATE
from searchseg.tuning.selection import RECENT_EPOCHS, Candidate, choose_trial

CONCURRENT_TRIALS = 2  # as searchseg runs trials on a 2-core CPU: one core each
DEFAULT = "start_0"
CURVE_SET = "recorded"
SEARCHSEG_RULE = "default_unless_clearly_beaten"
RULES = ("best_val", SEARCHSEG_RULE, "oracle")
OBJECTIVES = ("val_miou", "val_miou_recent", "elapsed_seconds")
CUT_METRICS = OBJECTIVES[:2]  # what ASHA compares at a rung: the last evaluation, or the mean of the recent ones
LOSS_KEYS = ("loss.ce", "loss.dice", "loss.focal", "loss.lovasz")
SHOWN_APART = ("arch", "encoder", "lr", "focal_gamma", *LOSS_KEYS)  # their own columns in the headroom table


def load_curves(path: Path, space: str | None = None, dataset: str | None = None) -> pd.DataFrame:
    """The recorded rows of one study, one per epoch: the first in the file (of ``space`` and ``dataset`` where
    given)."""
    rows = pd.read_json(path)
    asked = []
    for column, wanted in (("space", space), ("dataset", dataset)):
        if wanted is not None:
            asked.append(f"the {column} {wanted!r}")
            rows = rows[rows[column] == wanted]
            if rows.empty:
                raise SystemExit(f"error: {path} holds no curves of {' with '.join(reversed(asked))}")
    study = rows.iloc[0][["dataset", "split_seed", "space", "epochs", "epoch_steps"]]
    return rows[(rows[study.index] == study).all(axis=1)].sort_values(["config_id", "epoch"])


def with_default_seeds_of(curves: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``curves`` with the default's other seeds from another study of the same data, split and length, where that
    study's default is the same configuration (its seed-0 curve is identical, epoch by epoch)."""
    mine, theirs = (study[(study.config_id == DEFAULT) & (study.seed == 0)] for study in (curves, other))
    columns = ["epoch", "val_miou", "check_miou"]
    if not np.array_equal(mine[columns].to_numpy(), theirs[columns].to_numpy()):
        raise SystemExit("error: the two studies' defaults trained differently with seed 0; their other seeds do not "
                         "stand for this default")
    seeds = other[other.config_id.str.startswith(f"{DEFAULT}_seed_") & (other.seed > 0)]
    return pd.concat([curves, seeds.assign(space=curves.space.iloc[0])], ignore_index=True)


def configurations(curves: pd.DataFrame) -> list[str]:
    return sorted(curves[curves.seed == 0].config_id.unique())


def curve_seeds(curves: pd.DataFrame) -> int:
    return int(curves.seed.max()) + 1


def curve_of(curves: pd.DataFrame, config_id: str, seed: int) -> pd.DataFrame:
    """A configuration's recorded epochs with training ``seed``: one trained with seed 0 only (most samples; the
    default has more) stands for every seed."""
    name = config_id if seed == 0 else f"{config_id}_seed_{seed}"
    rows = curves[(curves.config_id == name) & (curves.seed == seed)]
    return rows if len(rows) else curves[(curves.config_id == config_id) & (curves.seed == 0)]


def blackbox(curves: pd.DataFrame) -> BlackboxTabular:
    """The configurations as a tabular blackbox, one table per training seed: at every epoch the validation mIoU,
    its mean over the last ``RECENT_EPOCHS`` evaluations (what ASHA may cut on instead: one evaluation of a model
    trained from scratch swings by 0.1 from one epoch to the next) and the elapsed seconds."""
    ids, seeds = configurations(curves), curve_seeds(curves)
    epochs = int(curves.epoch.max())
    evaluations = np.zeros((len(ids), seeds, epochs, len(OBJECTIVES)))
    for index, config_id in enumerate(ids):
        for seed in range(seeds):
            curve = curve_of(curves, config_id, seed)
            evaluations[index, seed, :, 0] = curve.val_miou.to_numpy()
            evaluations[index, seed, :, 1] = curve.val_miou.rolling(RECENT_EPOCHS, min_periods=1).mean().to_numpy()
            evaluations[index, seed, :, 2] = np.cumsum(curve.seconds.to_numpy()) * CONCURRENT_TRIALS
    # A second, constant column: BlackboxTabular looks a configuration up by a tuple of its columns, which pandas 3
    # refuses on a one-column index.
    return BlackboxTabular(hyperparameters=pd.DataFrame({"config_id": ids, "curves": CURVE_SET}),
                           configuration_space={"config_id": sp.choice(ids), "curves": CURVE_SET},
                           fidelity_space={"epoch": sp.randint(1, epochs)}, objectives_evaluations=evaluations,
                           objectives_names=list(OBJECTIVES))


class LastEpochs(TunerCallback):
    """The last epoch each configuration reached in any of its trials by ``seconds`` of simulated time (the tuner
    processes the first result after its stopping time too)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reached: dict[str, int] = {}

    def on_trial_result(self, trial, status, result, decision) -> None:
        if result[ST_TUNER_TIME] > self.seconds:
            return
        config_id = trial.config["config_id"]
        self.reached[config_id] = max(self.reached.get(config_id, 0), int(result["epoch"]))


def replay_search(box: BlackboxTabular, starts: list[str], search_seconds: float, max_epochs: int,
                  seed: int, grace_epochs: int = 1, cut_on: str = "val_miou") -> dict[str, int]:
    """One replayed search: each configuration it tried and the last epoch it trained. The start configurations
    come first, then the others in an order drawn with ``seed``: random sampling without replacement (Syne Tune's
    random searcher draws with replacement, which on a few recorded configurations repeats them). Every trial
    follows the curves of training seed ``seed % box.num_seeds``; ASHA compares trials at a rung by ``cut_on``."""
    others = [c for c in box.hyperparameters.config_id if c not in starts]
    order = starts + list(np.random.default_rng(seed).permutation(others))
    reached = LastEpochs(search_seconds)
    scheduler = ASHA(box.configuration_space, metric=cut_on, do_minimize=False, time_attr="epoch",
                     max_t=max_epochs, grace_period=grace_epochs, reduction_factor=3, random_seed=seed,
                     points_to_evaluate=[{"config_id": config_id, "curves": CURVE_SET} for config_id in order])
    backend = UserBlackboxBackend(box, elapsed_time_attr="elapsed_seconds", seed=seed % box.num_seeds)
    earlier = os.environ.get(SYNE_TUNE_ENV_FOLDER)
    with tempfile.TemporaryDirectory(prefix="replay_") as folder, redirect_stdout(io.StringIO()):
        os.environ[SYNE_TUNE_ENV_FOLDER] = folder  # the tuner's own results, not kept (else under ~/syne-tune)
        try:
            Tuner(trial_backend=backend, scheduler=scheduler,
                  stop_criterion=StoppingCriterion(max_wallclock_time=search_seconds), n_workers=CONCURRENT_TRIALS,
                  sleep_time=0, callbacks=[SimulatorCallback(), reached], save_tuner=False,
                  results_update_interval=1e9, print_update_interval=1e9).run()
        finally:
            if earlier is None:
                os.environ.pop(SYNE_TUNE_ENV_FOLDER)
            else:
                os.environ[SYNE_TUNE_ENV_FOLDER] = earlier
    return reached.reached


def rule_names(win_rates: tuple[float, ...] = ()) -> tuple[str, ...]:
    """The rules compared: ``RULES``, with searchseg's rule at each other bar in ``win_rates`` after its own."""
    others = tuple(f"clearly_beaten@{rate:g}" for rate in win_rates if rate != CLEARLY_BETTER_WIN_RATE)
    return (*RULES[:2], *others, *RULES[2:])


def choices(curves: pd.DataFrame, tried: dict[str, int], starts: list[dict], seed: int = 0,
            win_rates: tuple[float, ...] = ()) -> dict[str, str]:
    """The configuration each rule (``rule_names(win_rates)``) would continue among the trials of one replayed
    search on the curves of training seed ``seed`` (the default where no trial reported: the planner then trains
    it)."""
    if not tried:
        return dict.fromkeys(rule_names(win_rates), DEFAULT)
    candidates, counts = [], {}
    for config_id, last_epoch in tried.items():
        seen = curve_of(curves, config_id, seed)
        seen = seen[seen.epoch <= last_epoch]
        candidates.append(Candidate(config_id, seen.searched.iloc[0], float(seen.val_miou.max())))
        counts[config_id] = np.asarray(seen.val_counts.iloc[-RECENT_EPOCHS:].tolist()).sum(axis=0)
    bars = {rate: choose_trial(candidates, starts, "val_miou", "max", lambda c: counts[c.trial_id],
                               win_rate=rate)[0].trial_id
            for rate in dict.fromkeys((CLEARLY_BETTER_WIN_RATE, *win_rates))}
    return {"best_val": max(candidates, key=lambda c: c.score).trial_id, SEARCHSEG_RULE: bars[CLEARLY_BETTER_WIN_RATE],
            **{f"clearly_beaten@{rate:g}": chosen for rate, chosen in bars.items() if rate != CLEARLY_BETTER_WIN_RATE},
            "oracle": max(tried, key=lambda config_id: final_check(curves, config_id, seed))}


def final_check(curves: pd.DataFrame, config_id: str, seed: int) -> float:
    return float(curve_of(curves, config_id, seed).check_miou.iloc[-1])


def loss_mix(searched: dict) -> str:
    return "/".join(f"{searched[key]:.2g}" if key in searched else "-" for key in LOSS_KEYS)


def other_keys(searched: dict) -> str:
    return ", ".join(f"{key} {value:.2g}" if isinstance(value, float) else f"{key} {value}"
                     for key, value in searched.items() if key not in SHOWN_APART) or "-"


def headroom(curves: pd.DataFrame) -> str:
    """Each configuration's last-epoch scores against the default's, and the default's seed spread."""
    last = curves.groupby(["config_id", "seed"]).last().reset_index()
    default = last[(last.config_id == DEFAULT) & (last.seed == 0)].check_miou.iloc[0]
    seeds = curves[curves.config_id.str.startswith(DEFAULT)].groupby(["config_id", "seed"]).check_miou.last()
    lines = [f"default ({DEFAULT}) check mIoU at epoch {int(curves.epoch.max())}: {default:.4f}; its "
             f"{len(seeds)} seed(s) span {seeds.min():.4f}-{seeds.max():.4f} (sd {seeds.std():.4f})",
             "", "| configuration | arch/encoder | lr | loss (ce/dice/focal/lovasz) | other keys | val (last, best) | "
             "check | check - default |", "|---|---|---|---|---|---|---|---|"]
    for row in last.sort_values("check_miou", ascending=False).itertuples():
        searched = row.searched
        best_val = curves[(curves.config_id == row.config_id) & (curves.seed == row.seed)].val_miou.max()
        lines.append(f"| {row.config_id} | {searched.get('arch', '-')}/{searched.get('encoder', '-')} | "
                     f"{searched.get('lr', float('nan')):.1e} | {loss_mix(searched)} | {other_keys(searched)} | "
                     f"{row.val_miou:.4f}, {best_val:.4f} | "
                     f"{row.check_miou:.4f} | {row.check_miou - default:+.4f} |")
    best_epoch = curves.loc[curves.groupby(["config_id", "seed"]).val_miou.idxmax()].set_index(["config_id", "seed"])
    kept = best_epoch.check_miou - last.set_index(["config_id", "seed"]).check_miou
    lines += ["", f"Each curve's best-validation epoch instead of its last: check {kept.mean():+.4f} ± "
              f"{kept.std():.4f} (mean ± sd over {len(kept)} curves; better in {(kept > 0).sum()}, worse in "
              f"{(kept < 0).sum()})"]
    return "\n".join(lines)


def replays(curves: pd.DataFrame, search_seconds: list[float], max_epochs: int, count: int,
            grace_epochs: int = 1, cut_on: str = "val_miou", win_rates: tuple[float, ...] = ()) -> str:
    """Every rule's check mIoU minus the default's over ``count`` replayed searches per search length."""
    rules = rule_names(win_rates)
    box = blackbox(curves)
    start_rows = curves[curves.config_id.str.fullmatch(r"start_\d+") & (curves.seed == 0)]
    start_ids = sorted(start_rows.config_id.unique())
    starts = [start_rows[start_rows.config_id == config_id].searched.iloc[0] for config_id in start_ids]
    lines = ["| search seconds | trials (median) | " + " | ".join(rules) + " |", "|---|---|" + "---|" * len(rules)]
    for seconds in search_seconds:
        gains: dict[str, list[float]] = {rule: [] for rule in rules}
        other: dict[str, list[bool]] = {rule: [] for rule in rules}
        trials = []
        for seed in range(count):
            tried = replay_search(box, start_ids, seconds, max_epochs, seed, grace_epochs, cut_on)
            trials.append(len(tried))
            curve_seed = seed % box.num_seeds  # the no-search default trained with the same seed: paired
            for rule, config_id in choices(curves, tried, starts, curve_seed, win_rates).items():
                gains[rule].append(final_check(curves, config_id, curve_seed) - final_check(curves, DEFAULT,
                                                                                              curve_seed))
                other[rule].append(config_id != DEFAULT)
        cells = [f"{statistics.mean(gains[rule]):+.4f} ({statistics.mean(other[rule]):.0%} not the default)"
                 for rule in rules]
        lines.append(f"| {seconds:.0f} | {statistics.median(trials):.0f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--curves", type=Path, default=CURVES, help="what benchmarks.curves recorded")
    parser.add_argument("--space", help="whose curves to replay, as benchmarks.curves named it (default: the first "
                                        "study in the file)")
    parser.add_argument("--dataset", help="whose curves to replay, as benchmarks.curves named it (default: the "
                                          "first study's)")
    parser.add_argument("--default-seeds-from", metavar="SPACE",
                        help="take the default's other seeds from this space's study of the same data set in the "
                             "same file, where its default trained the same curve with seed 0")
    parser.add_argument("--search-seconds", type=float, nargs="+", default=[285.0, 570.0, 1140.0],
                        help="simulated seconds of search (a 600 s run on a 2-core CPU searched for about 285)")
    parser.add_argument("--max-epochs", type=int, default=12, help="the top rung: a trial's most epochs")
    parser.add_argument("--grace-epochs", type=int, default=4, help="the first rung (a 600 s plan's: 4 of 15 steps)")
    parser.add_argument("--replays", type=int, default=99, help="replayed searches per search length")
    parser.add_argument("--cut-on", choices=CUT_METRICS, default="val_miou",
                        help=f"what ASHA compares at a rung: the last validation mIoU (searchseg's search), or its "
                             f"mean over the last {RECENT_EPOCHS} evaluations")
    parser.add_argument("--win-rates", type=float, nargs="+", default=[], metavar="RATE",
                        help=f"searchseg's rule also with these bars (share of resamples a trial must win over the "
                             f"default; its own: {CLEARLY_BETTER_WIN_RATE})")
    args = parser.parse_args()
    if any(not 0.5 <= rate <= 1.0 for rate in args.win_rates):
        parser.error(f"--win-rates: each between 0.5 and 1, got {' '.join(map(str, args.win_rates))}")
    logging.getLogger("syne_tune").setLevel(logging.ERROR)  # its notes on every replay
    curves = load_curves(args.curves, args.space, args.dataset)
    if args.default_seeds_from:
        curves = with_default_seeds_of(curves, load_curves(args.curves, args.default_seeds_from,
                                                           curves.dataset.iloc[0]))
    print(headroom(curves), "", f"Check mIoU at epoch {int(curves.epoch.max())} of the configuration each rule "
          f"continues minus the default's, mean over {args.replays} replayed searches:", "",
          replays(curves, args.search_seconds, args.max_epochs, args.replays, args.grace_epochs, args.cut_on,
                  tuple(args.win_rates)),
          sep="\n")


if __name__ == "__main__":
    main()
