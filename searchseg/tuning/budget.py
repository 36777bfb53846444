"""A wall-clock budget turned into a plan: how many trials, how long each may train, where ASHA compares
them, and how much time the final model gets.

Everything here is arithmetic on measured costs (seconds per optimizer step of each model, measured before
planning), so it is tested without training anything. Budgets are counted in optimizer steps, never in
passes over the data, so a plan means the same on 20 images as on 20,000 (nnU-Net counts its epochs as 250
iterations for the same reason).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from searchseg.errors import UserError
from searchseg.options import format_duration
from searchseg.spaces.space import asha_rungs
from searchseg.training.class_counts import MIN_INDEPENDENT_GROUPS

# Below this many optimizer steps a trial's validation score says little about where it will end up: the
# first steps mostly move BatchNorm statistics and the output bias. A judgement, not yet a measurement.
MIN_RUNG_STEPS = 30
# An epoch is at least this many steps, and long enough that evaluating the validation split and writing a
# checkpoint after it costs little next to the training.
MIN_EPOCH_STEPS = 15
# ... and at least this many times as long as its checkpoint takes to write: where a step is fast (a GPU: a 290 MB
# U-Net/ResNet-34 checkpoint takes 0.2 s, 15 steps at 512 px about 0.3 s) epochs grow, so checkpoints come every
# few seconds of training rather than every 15 steps.
CHECKPOINT_EPOCH_RATIO = 10
# Asynchronous successive halving promotes early arrivals more than the synchronous theory does
# (benchmarks/RESULTS.md row 2 measured 1.44x on 8 trials); plan for part of that.
ASHA_SLACK = 1.3
# The most trials a plan runs when --samples does not say.
MAX_SAMPLES = 256
# Seconds lost per trial to Ray (scheduling, the first checkpoint, reporting): a new trial runs in a finished
# trial's process (reuse_actors), +0.5 s per trial against a process pool in row 3 (2-core CPU, 2026-12-07;
# +2.8 s when every trial started its own process).
TRIAL_START_SECONDS = 1.0
# The first trial in each slot also starts a fresh worker that imports torch: its first report came ~6 s later
# than its steps alone explain (2-core CPU, CHASE, --budget 300).
COLD_START_SECONDS = 6.0


def process_started_at() -> float:
    """Wall-clock time this process started (Linux: from /proc, so the imports count); elsewhere, now."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()


@dataclass(frozen=True)
class Costs:
    """What the plan is built from, all measured on this machine before planning."""

    step_seconds: dict[str, float]  # "arch/encoder" -> seconds per optimizer step with one trial's resources
    final_speedup: float  # how much faster a step is with all the machine's resources than with one trial's
    val_batches: int  # batches in one pass over the validation split
    test_batches: int
    concurrency: int  # trials that run at once
    spent_seconds: float  # already gone: data check, decoding, Ray start, these measurements
    start_step_seconds: float = 0.0  # mean over the start configurations' models, which always run first
    checkpoint_seconds: float = 0.0  # writing a trial's checkpoint, which it does after every epoch
    val_groups: int | None = None  # independent groups of validation images (None: not counted)


@dataclass(frozen=True)
class BudgetPlan:
    budget_seconds: float
    spent_seconds: float
    search_seconds: float
    final_seconds: float
    reserve_seconds: float  # test evaluation, overlays, report
    samples: int
    concurrency: int
    epoch_steps: int  # the unit ASHA counts in: one epoch is this many optimizer steps
    grace_epochs: int  # ASHA's first rung
    max_epochs: int  # ASHA's last rung: the most a trial trains during the search
    reduction_factor: int
    final_epochs: int  # planned length of the final training, continuing the best trial
    horizon_epochs: int  # a trial's learning-rate schedule spans its search steps plus the final training
    step_seconds: float  # mean over the measured models, one trial's resources
    no_search_reason: str = ""  # with samples 0: why the plan does not search
    # "arch/encoder" -> seconds of a final-training step on all resources, its epoch's validation and checkpoint
    # shared out: what the final training plans its first epoch from
    final_step_seconds: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def final_step_estimate(self, arch: str, encoder: str) -> float:
        """Seconds of one final-training step of this model on all resources, validation and checkpoint included."""
        if f"{arch}/{encoder}" in self.final_step_seconds:
            return self.final_step_seconds[f"{arch}/{encoder}"]
        if self.final_step_seconds:  # a model the plan did not time: the slowest it timed, so that the epoch fits
            return max(self.final_step_seconds.values())
        return self.final_seconds / (self.final_epochs * self.epoch_steps)  # a plan saved before they were kept

    @property
    def rung_steps(self) -> list[int]:
        return [rung * self.epoch_steps for rung in asha_rungs(self.grace_epochs, self.max_epochs,
                                                                self.reduction_factor)]

    def describe(self, start_configs: int, clock: str) -> list[str]:
        """The plan as printed before the search starts."""
        if not self.samples:
            first = "the first start configuration" if start_configs else "the space's central configuration"
            return [
                f"plan for a {format_duration(self.budget_seconds)} budget (ends by {clock}):",
                f"  spent so far {self.spent_seconds:.0f} s (data check, decoding, timing the models)",
                f"  no search: {self.no_search_reason or 'the budget cannot train two trials to compare them'}",
                f"  final model {self.final_seconds:.0f} s: {first} trained from scratch on all resources for "
                f"~{self.final_epochs * self.epoch_steps} steps ({self.final_epochs} epochs of {self.epoch_steps})",
                f"  reserve {self.reserve_seconds:.0f} s: test evaluation, overlays, report",
            ]
        rungs = self.rung_steps
        stopping = (f"ASHA compares trials at {', '.join(map(str, rungs))} steps (reduction {self.reduction_factor})"
                    if len(rungs) > 1 else f"each trial trains {rungs[0]} steps (too few trials to stop any early)")
        searched = f"{min(start_configs, self.samples)} start configuration(s), then TPE" if start_configs else "TPE"
        return [
            f"plan for a {format_duration(self.budget_seconds)} budget (ends by {clock}):",
            f"  spent so far {self.spent_seconds:.0f} s (data check, decoding, Ray start, timing the models)",
            f"  search {self.search_seconds:.0f} s: {self.samples} trials ({searched}), {self.concurrency} at once, "
            f"~{self.step_seconds:.2f} s per step",
            f"    fidelity: 1 epoch = {self.epoch_steps} optimizer steps; {stopping}",
            f"  final model {self.final_seconds:.0f} s: the best trial continued on all resources for "
            f"~{self.final_epochs * self.epoch_steps} more steps; the trial itself is kept only if it scores higher "
            "on validation beyond resampling noise",
            f"  reserve {self.reserve_seconds:.0f} s: test evaluation, overlays, report",
        ]


def _rung_count(samples: int, reduction_factor: int) -> int:
    """Successive halving with k rungs needs reduction_factor**(k-1) trials to promote even one to the last."""
    return 1 + int(math.log(max(samples, 1), reduction_factor) + 1e-9) if samples > 1 else 1


def plan_budget(budget_seconds: float, costs: Costs, start_configs: int = 0, final_share: float = 0.5,
                reduction_factor: int = 3, max_samples: int | None = None,
                max_trial_epochs: int | None = None) -> BudgetPlan:
    """Split what is left of the budget between the search and the final model, then size the search.

    The trial count grows with the square root of the search's capacity in steps: a larger budget buys both
    more configurations and longer trials. ASHA gets as many rungs as that count supports, the lowest at
    least ``MIN_RUNG_STEPS`` steps; when even one rung of that length does not fit every trial, fewer trials
    run (the start configurations first). When not even two trials can reach such a rung, there is nothing to
    compare: the plan has no search (``samples == 0``) and all of it goes to training the first start
    configuration with every resource, which is what a user would do with so little time. The same holds when the
    validation split has fewer than ``MIN_INDEPENDENT_GROUPS`` independent groups (``costs.val_groups``): no trial
    could be told apart from the default there; and when the budget affords no more trials than the start
    configurations and one sample, a search measured not to beat the default trained for the whole budget.

    ``max_samples`` and ``max_trial_epochs`` (``--samples``, ``--epochs``) are limits inside the plan: fewer or
    shorter trials than the budget affords, their unused seconds handed to the final model. ``max_samples`` 0 or 1
    switches the search off.
    """
    if not 0.0 < final_share < 1.0:
        raise UserError(f"final_share must be between 0 and 1, got {final_share}")
    mean_step = max(sum(costs.step_seconds.values()) / len(costs.step_seconds), costs.start_step_seconds)
    # writing the report and the study took 1-2 s here; the rest is the test pass and slack for a slow epoch
    reserve = 3.0 + 0.01 * budget_seconds + costs.test_batches * mean_step / costs.final_speedup
    left = budget_seconds - costs.spent_seconds - reserve
    if left <= 0:
        raise UserError(f"--budget {format_duration(budget_seconds)} is used up before the search can start "
                        f"({costs.spent_seconds:.0f} s to load and measure, {reserve:.0f} s to evaluate); "
                        "give a larger budget")
    final_seconds = final_share * left
    search_seconds = left - final_seconds
    epoch_steps = max(MIN_EPOCH_STEPS, math.ceil(2.2 * costs.val_batches),
                      math.ceil(CHECKPOINT_EPOCH_RATIO * costs.checkpoint_seconds / mean_step))
    step_seconds = _epoch_seconds(mean_step, epoch_steps, costs) / epoch_steps

    search = _SearchCapacity(search_seconds, costs.concurrency, step_seconds, reduction_factor)
    wanted = min(MAX_SAMPLES, max(start_configs + 1, costs.concurrency, round(math.sqrt(search.steps(4) /
                                                                                  MIN_RUNG_STEPS))))
    afforded, rungs, grace_steps = search.most_trials(wanted)
    samples = afforded
    if max_samples is not None and max_samples < afforded:
        samples, rungs, grace_steps = search.most_trials(max_samples)
    reason = _no_search_reason(samples, afforded, start_configs, max_samples, costs.val_groups)
    if reason:
        samples, rungs, grace_epochs, search_seconds, final_seconds = 0, 1, 0, 0.0, left
    else:
        grace_epochs = max(1, int(grace_steps // epoch_steps))
        if grace_epochs * epoch_steps < MIN_RUNG_STEPS or grace_steps < epoch_steps:
            # too little for the planned epochs to make a whole first rung: that rung is one longer epoch
            epoch_steps, grace_epochs = int(grace_steps), 1
        if max_trial_epochs is not None:
            rungs = min(rungs, _rung_count_within(grace_epochs, max_trial_epochs, reduction_factor))
            grace_epochs = min(grace_epochs, max_trial_epochs)
            needed = search.seconds_for(samples, rungs, grace_epochs * epoch_steps)
            if needed < search_seconds:  # the limit leaves seconds over: the final model gets them
                final_seconds, search_seconds = left - needed, needed
    max_epochs = grace_epochs * reduction_factor ** (rungs - 1)
    final_steps = final_seconds * costs.final_speedup / step_seconds
    final_epochs = max(1, int(final_steps // epoch_steps))
    return BudgetPlan(
        budget_seconds=budget_seconds, spent_seconds=costs.spent_seconds, search_seconds=search_seconds,
        final_seconds=final_seconds, reserve_seconds=reserve, samples=samples, concurrency=costs.concurrency,
        epoch_steps=epoch_steps, grace_epochs=grace_epochs, max_epochs=max_epochs,
        reduction_factor=reduction_factor, final_epochs=final_epochs, horizon_epochs=max_epochs + final_epochs,
        step_seconds=step_seconds, no_search_reason=reason,
        final_step_seconds={model: _epoch_seconds(seconds, epoch_steps, costs) / epoch_steps / costs.final_speedup
                            for model, seconds in costs.step_seconds.items()},
    )


def _no_search_reason(samples: int, afforded: int, start_configs: int, max_samples: int | None,
                      val_groups: int | None) -> str:
    """Why the plan does not search, or "" when it does. A search that validation cannot rank only takes time from
    the final model: on one tile's crops a trial ahead of the default is as often ahead by chance
    (benchmarks/RESULTS.md row 6), so below ``MIN_INDEPENDENT_GROUPS`` the default trains for the whole budget. So
    does a budget that affords only the start configurations and one sample (``afforded``, before ``--samples``
    limits it): measured at 300 s, such a search never beat the default trained for all of the budget (row 6)."""
    if max_samples is not None and max_samples < 2:
        return "--samples limits the search to one trial or none"
    if val_groups is not None and val_groups < MIN_INDEPENDENT_GROUPS:
        return (f"validation has {val_groups} independent group(s) of images (with group_by folder a folder is "
                f"one); telling two trials apart beyond noise needs {MIN_INDEPENDENT_GROUPS}: raise val_fraction "
                "or add data to search")
    if samples < 2:
        return f"the budget cannot train two trials for {MIN_RUNG_STEPS} steps each to compare them"
    if start_configs and afforded <= start_configs + 1:
        return (f"the budget affords {afforded} trials, no more than the space's {start_configs} start "
                "configuration(s) and one sample; a search that small did not beat the default trained for the "
                "whole budget (benchmarks/RESULTS.md row 6): give a larger budget to search")
    return ""


def _epoch_seconds(step_seconds: float, epoch_steps: int, costs: Costs) -> float:
    """One epoch of a trial: its steps, a validation pass (a forward is about a third of a training step), the
    checkpoint."""
    return epoch_steps * step_seconds + costs.val_batches * step_seconds / 3 + costs.checkpoint_seconds


@dataclass(frozen=True)
class _SearchCapacity:
    """What the search's share of the budget affords: optimizer steps for a number of trials, and the most
    trials whose first ASHA rung still holds ``MIN_RUNG_STEPS`` steps."""

    seconds: float
    concurrency: int
    step_seconds: float
    reduction_factor: int

    def steps(self, samples: int) -> float:
        """Optimizer steps all ``samples`` trials together can take."""
        slots = min(self.concurrency, samples)
        usable = self.seconds * slots - samples * TRIAL_START_SECONDS - slots * COLD_START_SECONDS
        return max(usable, 0.0) / self.step_seconds / ASHA_SLACK

    def seconds_for(self, samples: int, rungs: int, grace_steps: float) -> float:
        """Wall-clock seconds ``samples`` trials take through ``rungs`` rungs, the first ``grace_steps`` long
        (``steps`` turned around)."""
        slots = min(self.concurrency, samples)
        return (self.grace_units(samples, rungs) * grace_steps * self.step_seconds * ASHA_SLACK
                + samples * TRIAL_START_SECONDS + slots * COLD_START_SECONDS) / slots

    def grace_units(self, samples: int, rungs: int) -> float:
        """First rungs' worth of training: every trial to the first rung, 1/r of them to each further one."""
        return samples * (1 + (rungs - 1) * (self.reduction_factor - 1) / self.reduction_factor)

    def most_trials(self, samples: int) -> tuple[int, int, float]:
        """(trials, rungs, first-rung steps), from ``samples`` down until the first rung is long enough
        (fewer than 2 trials: no search fits)."""
        rungs, grace_steps = 1, 0.0
        while samples >= 2:
            rungs = _rung_count(samples, self.reduction_factor)
            grace_steps = self.steps(samples) / self.grace_units(samples, rungs)
            if grace_steps >= MIN_RUNG_STEPS:
                break
            samples -= 1
        return samples, rungs, grace_steps


def _rung_count_within(grace_epochs: int, max_trial_epochs: int, reduction_factor: int) -> int:
    """The most rungs whose last stays within ``max_trial_epochs`` (at least one)."""
    rungs = 1
    while grace_epochs * reduction_factor ** rungs <= max_trial_epochs:
        rungs += 1
    return rungs
