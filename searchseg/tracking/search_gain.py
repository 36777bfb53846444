"""What a budgeted search added over the space's default (its first start configuration), in words, from the record
of the choice that ``final/metrics.json`` keeps (``tuning.selection.TrialChoice``): the run prints it when it
chooses and the report shows the same words."""

from __future__ import annotations

from typing import Any


def search_gain(choice: dict[str, Any], pooled: str = "") -> str | None:
    """One line: the keys in which the continued trial differs from the default and the share of validation
    resamples on which it beat it, or that the default itself is continued and how close the higher-scoring trials
    came; None when the default never reported (nothing to compare with). ``pooled`` says how the resamples were
    drawn. A record written before the trials' configs were kept names trials by their ids."""
    default_trial = choice.get("default_trial")
    if default_trial is None:
        return None
    configs: dict[str, dict] = choice.get("configs") or {}
    rates: dict[str, float] = choice.get("win_rates") or {}
    default = configs.get(default_trial)
    name = f"{default.get('arch', '?')}/{default.get('encoder', '?')}" if default else f"trial {default_trial}"
    if choice["trial"] == default_trial:
        line = f"nothing; the default, {name} (the first start configuration), is continued: no trial beat it " \
               "clearly on validation"
        if not rates:
            return line
        rivals = ", ".join(f"{trial_name(trial, configs) or 'trial ' + trial} on {rate:.0%}"
                           for trial, rate in rates.items())
        return f"{line} (higher-scoring trials ahead of it on resamples: {rivals}" + (f"; {pooled})" if pooled else ")")
    chosen = configs.get(choice["trial"])
    differs = ", ".join(f"{key} {value:.3g}" if isinstance(value, float) else f"{key} {value}"
                        for key, value in sorted(chosen.items()) if default.get(key) != value) \
        if chosen and default else ""
    line = f"{differs or 'trial ' + choice['trial']} instead of the default {name}"
    rate = rates.get(choice["trial"], choice.get("over_default_win_rate"))  # the older records' field
    if rate is None:
        return line
    return f"{line}, ahead of it on {rate:.0%} of validation resamples" + (f" ({pooled})" if pooled else "")


def trial_name(trial: str, configs: dict[str, dict]) -> str | None:
    """A trial by its architecture, encoder and learning rate; None where its config is not known."""
    config = configs.get(trial)
    if config is None:
        return None
    lr = config.get("lr")
    return f"{config.get('arch', '?')}/{config.get('encoder', '?')}" + (f" lr {lr:.2g}" if lr is not None else "")
