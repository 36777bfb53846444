"""The option records: durations, and ``run``'s flags made from the records' fields."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from searchseg.errors import UserError
from searchseg.option_flags import add_flags, record_from_flags
from searchseg.options import (
    Flag,
    OutputConfig,
    ResourceConfig,
    Scheduler,
    SearchConfig,
    Searcher,
    Tracker,
    format_duration,
    option,
    parse_duration,
)


@pytest.mark.parametrize(("text", "seconds"), [("300", 300), ("300s", 300), ("20m", 1200), ("2h", 7200),
                                               ("1h30m", 5400), ("1.5m", 90), (" 45 s ", 45)])
def test_durations_parse(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "five minutes", "-5", "5d", "0", "m", "1m1h"])
def test_bad_durations_fail_with_the_accepted_forms(text):
    with pytest.raises(UserError, match="300, 300s, 20m, 2h|longer than 0"):
        parse_duration(text)


def test_a_budget_beyond_a_month_is_a_typo():
    with pytest.raises(UserError, match="longer than 30 days"):
        parse_duration("100000000h")


def test_durations_format_back():
    assert [format_duration(s) for s in (45, 300, 5400)] == ["45s", "5m00s", "1h30m00s"]


def parsed(record: type, argv: list[str]):
    parser = argparse.ArgumentParser()
    add_flags(parser.add_argument_group(), record)
    return record_from_flags(record, parser.parse_args(argv))


@pytest.mark.parametrize("record", [SearchConfig, ResourceConfig, OutputConfig])
def test_every_option_field_has_a_flag_and_no_flag_changes_a_default(record):
    for field in dataclasses.fields(record):
        assert isinstance(field.metadata.get("flag"), Flag), f"{record.__name__}.{field.name} declares no flag"
    assert parsed(record, []) == record()


def test_flags_set_their_fields_parsed_and_named_values_become_members():
    search = parsed(SearchConfig, ["--budget", "20m", "--samples", "0", "--searcher", "random",
                                   "--no-early-stopping", "--smoke", "--max-latency-ms", "12.5"])
    assert (search.budget, search.samples, search.smoke, search.max_latency_ms) == (1200.0, 0, True, 12.5)
    assert search.searcher is Searcher.RANDOM and search.scheduler is Scheduler.NONE
    resources = parsed(ResourceConfig, ["--cluster-wait", "2m", "--gpus-per-trial", "0.25", "--dashboard"])
    assert (resources.cluster_wait, resources.gpus_per_trial, resources.dashboard) == (120.0, 0.25, True)
    output = parsed(OutputConfig, ["--results", "elsewhere", "--tracker", "wandb", "--tracker", "mlflow", "--quiet"])
    assert output.results_dir == Path("elsewhere") and output.verbose == 0
    assert output.trackers == [Tracker.WANDB, Tracker.MLFLOW]


def test_a_bad_value_is_refused_when_the_flags_are_parsed(capsys):
    with pytest.raises(UserError, match="--cluster-wait 'soon' is not a duration"):
        parsed(ResourceConfig, ["--cluster-wait", "soon"])
    with pytest.raises(SystemExit):
        parsed(SearchConfig, ["--searcher", "grid"])
    assert "invalid choice: 'grid'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # two switches of one field
        parsed(OutputConfig, ["--quiet", "--verbose"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_field_added_to_a_record_gets_its_flag():
    @dataclasses.dataclass
    class Extra:
        max_trials_per_node: int | None = option(None, Flag("at most N trials on one node", parse=int))
        unlisted: int = 3  # declares no flag: not on the command line

    parser = argparse.ArgumentParser()
    add_flags(parser.add_argument_group(), Extra)
    assert "--max-trials-per-node" in parser.format_help() and "--unlisted" not in parser.format_help()
    assert record_from_flags(Extra, parser.parse_args(["--max-trials-per-node", "4"])) == Extra(4)
