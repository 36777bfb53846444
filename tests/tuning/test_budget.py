"""The budget arithmetic: plans built from measured costs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from searchseg.errors import UserError
from searchseg.training.class_counts import MIN_INDEPENDENT_GROUPS
from searchseg.tuning.budget import MIN_RUNG_STEPS, BudgetPlan, Costs, plan_budget


def costs(step: float = 0.6, concurrency: int = 2, spent: float = 20.0, val_batches: int = 2) -> Costs:
    return Costs({"unet/resnet18": step, "fpn/resnet18": step / 2, "unet/resnet34": step * 1.5}, 1.6,
                 val_batches, 2, concurrency, spent)


def test_a_plan_accounts_for_every_second_of_the_budget():
    plan = plan_budget(600, costs(), start_configs=2)
    assert plan.samples
    total = plan.spent_seconds + plan.search_seconds + plan.final_seconds + plan.reserve_seconds
    assert total == pytest.approx(600)
    assert plan.search_seconds == pytest.approx(plan.final_seconds)  # final_share 0.5 by default
    assert plan.horizon_epochs == plan.max_epochs + plan.final_epochs


def test_the_search_fits_its_share_at_the_measured_step_cost():
    c = costs()
    plan = plan_budget(600, c, start_configs=2)
    rungs = plan.rung_steps
    # successive halving: every trial to the first rung, 1/r of them on to each next one
    planned_steps = sum(plan.samples / plan.reduction_factor ** i * (rung - (rungs[i - 1] if i else 0))
                        for i, rung in enumerate(rungs))
    capacity = plan.search_seconds * c.concurrency / plan.step_seconds
    assert planned_steps <= capacity
    assert rungs[0] >= MIN_RUNG_STEPS and rungs[0] % plan.epoch_steps == 0
    assert plan.samples >= 4  # both start configurations and at least two TPE samples


def test_larger_budgets_buy_more_trials_and_longer_ones():
    small, large, huge = (plan_budget(t, costs(), start_configs=2) for t in (300, 1800, 7200))
    assert small.samples <= large.samples < huge.samples
    assert small.max_epochs * small.epoch_steps < huge.max_epochs * huge.epoch_steps
    assert small.final_epochs < large.final_epochs < huge.final_epochs


def test_the_same_seconds_mean_the_same_steps_on_any_dataset_size():
    few_images, many_images = plan_budget(600, costs(val_batches=1)), plan_budget(600, costs(val_batches=2))
    assert few_images.epoch_steps == many_images.epoch_steps  # an epoch is counted in steps, not passes
    assert few_images.rung_steps == many_images.rung_steps


def test_slower_models_get_fewer_steps_in_the_same_time():
    fast, slow = plan_budget(600, costs(step=0.3)), plan_budget(600, costs(step=1.2))
    assert slow.samples * slow.rung_steps[0] < fast.samples * fast.rung_steps[0]
    assert slow.final_epochs < fast.final_epochs


def test_a_budget_too_small_to_search_says_so():
    with pytest.raises(UserError, match="used up before the search can start"):
        plan_budget(30, costs(spent=28))


def test_a_tight_budget_runs_fewer_shorter_trials_that_still_reach_the_first_rung():
    roomy, tight = plan_budget(600, costs(step=1.0)), plan_budget(150, costs(step=1.0))
    assert 2 <= tight.samples < roomy.samples
    assert tight.rung_steps[0] >= MIN_RUNG_STEPS
    assert tight.max_epochs * tight.epoch_steps < roomy.max_epochs * roomy.epoch_steps


def test_a_budget_too_short_to_compare_two_trials_trains_the_first_start_configuration_with_all_of_it():
    c = costs(step=1.0)
    plan = plan_budget(90, c, start_configs=2)
    assert plan.samples == 0 and plan.search_seconds == 0 and plan.max_epochs == 0
    assert plan.final_seconds == pytest.approx(90 - c.spent_seconds - plan.reserve_seconds)
    assert plan.horizon_epochs == plan.final_epochs >= 1
    # all resources for the whole final share: steps at the faster, all-threads pace
    assert plan.final_epochs * plan.epoch_steps == int(plan.final_seconds * c.final_speedup / plan.step_seconds
                                                       // plan.epoch_steps) * plan.epoch_steps
    assert "no search" in "\n".join(plan.describe(2, "12:00:00"))


@pytest.mark.parametrize("budget", [60, 75, 90, 120, 150, 200, 300])
def test_no_plan_has_a_lone_trial_or_a_first_rung_below_the_minimum(budget):
    plan = plan_budget(budget, costs(step=0.8, spent=15), start_configs=2)
    assert plan.samples != 1
    if plan.samples:
        assert plan.rung_steps[0] >= MIN_RUNG_STEPS
        assert sum(plan.samples / plan.reduction_factor ** i for i in range(len(plan.rung_steps))) * \
            plan.rung_steps[0] * plan.step_seconds <= plan.search_seconds * min(plan.samples, plan.concurrency)


@pytest.mark.parametrize("val_batches", [7, 8, 10, 12, 13])  # planned epochs of 16-29 steps
@pytest.mark.parametrize("budget", [100, 150, 200, 300, 600])
def test_the_first_rung_is_never_below_the_minimum_for_epochs_of_16_to_29_steps(val_batches, budget):
    plan = plan_budget(budget, costs(step=0.3, spent=10, val_batches=val_batches), start_configs=2)
    if plan.samples:
        assert plan.rung_steps[0] >= MIN_RUNG_STEPS


def test_samples_and_epochs_are_limits_inside_the_plan_and_their_seconds_go_to_the_final_model():
    free = plan_budget(1800, costs(), start_configs=2)
    limited = plan_budget(1800, costs(), start_configs=2, max_samples=3, max_trial_epochs=2)
    assert limited.samples == 3 < free.samples and limited.max_epochs <= 2
    assert limited.final_seconds > free.final_seconds and limited.search_seconds < free.search_seconds
    total = limited.spent_seconds + limited.search_seconds + limited.final_seconds + limited.reserve_seconds
    assert total == pytest.approx(1800)


@pytest.mark.parametrize("limit", [0, 1])
def test_samples_0_or_1_switches_the_search_off_and_says_why(limit):
    plan = plan_budget(1800, costs(), start_configs=2, max_samples=limit)
    assert plan.samples == 0 and plan.search_seconds == 0
    assert "--samples limits the search" in "\n".join(plan.describe(2, "12:00:00"))


def test_epochs_grow_where_a_checkpoint_is_slow_next_to_the_steps():
    def plan(step: float, checkpoint: float):
        return plan_budget(1800, Costs({"unet/resnet18": step}, 1.6, 2, 2, 2, 20.0, checkpoint_seconds=checkpoint))

    assert plan(0.6, 0.2).epoch_steps == plan(0.6, 0.0).epoch_steps  # on a CPU a checkpoint is a fraction of a step
    gpu = plan(0.02, 0.4)
    assert gpu.epoch_steps * 0.02 >= 10 * 0.4  # an epoch trains at least ten times as long as its checkpoint takes


def test_the_final_training_plans_its_first_epoch_from_the_continued_models_own_step():
    c = costs(step=0.6, val_batches=3)
    plan = plan_budget(600, c, start_configs=2)
    fast, slow = plan.final_step_estimate("fpn", "resnet18"), plan.final_step_estimate("unet", "resnet34")
    assert slow == pytest.approx(3 * fast)  # unet/resnet34's step is 3x fpn/resnet18's, and so is its validation
    # all resources, and its share of an epoch's validation pass (a forward is a third of a step)
    epoch = plan.epoch_steps * 0.6 + 3 * 0.6 / 3
    assert plan.final_step_estimate("unet", "resnet18") == pytest.approx(epoch / plan.epoch_steps / c.final_speedup)
    assert plan.final_step_estimate("deeplabv3plus", "resnet50") == slow  # not timed: the slowest that was
    saved = BudgetPlan(**{**plan.to_dict(), "final_step_seconds": {}})  # run.json written before they were kept
    assert saved.final_step_estimate("unet", "resnet18") == pytest.approx(
        plan.final_seconds / (plan.final_epochs * plan.epoch_steps))


def test_a_validation_split_too_small_to_rank_trials_is_not_searched_and_the_plan_says_why():
    ranked = plan_budget(600, costs(), start_configs=2)
    assert ranked.samples >= 2
    for groups in (1, MIN_INDEPENDENT_GROUPS - 1):
        plan = plan_budget(600, replace(costs(), val_groups=groups), start_configs=2)
        assert plan.samples == 0 and plan.search_seconds == 0 and plan.final_seconds > ranked.final_seconds
        assert f"validation has {groups} independent group(s)" in plan.no_search_reason
        assert "raise val_fraction" in "\n".join(plan.describe(2, "12:00:00"))
    assert plan_budget(600, replace(costs(), val_groups=MIN_INDEPENDENT_GROUPS), start_configs=2).samples >= 2


def test_a_budget_that_affords_only_the_start_configurations_and_one_sample_trains_the_default_and_says_why():
    small, larger = plan_budget(300, costs(), start_configs=2), plan_budget(600, costs(), start_configs=2)
    assert small.samples == 0 and small.search_seconds == 0 and small.max_epochs == 0
    assert "the budget affords 3 trials, no more than the space's 2 start configuration(s) and one sample" in \
        small.no_search_reason
    assert "give a larger budget to search" in "\n".join(small.describe(2, "12:00:00"))
    assert larger.samples >= 4 and not larger.no_search_reason
    assert plan_budget(300, costs(), start_configs=1).samples == 3  # one start configuration and two samples
    # --samples limits a search the budget affords; it does not make one the budget cannot afford worth running
    assert plan_budget(600, costs(), start_configs=2, max_samples=3).samples == 3
    assert plan_budget(300, costs(), start_configs=2, max_samples=3).samples == 0
