"""The data check end to end: findings, a draft class map, preflight, and the report in three forms."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchseg.data import load_from_config
from searchseg.data.checks import CheckReport, draft_class_map, full_check, infer_class_map
from searchseg.data.spec import resolve_spec
from searchseg.io_utils import atomic_write_text
from searchseg.options import SearchOptions
from searchseg.report.check_page import write_check_html
from searchseg.training.class_counts import MIN_INDEPENDENT_GROUPS

if TYPE_CHECKING:  # the preflight imports torch; a check without it stays light
    from searchseg.jobs.preflight import PreflightResult

SEVERITY_MARK = {"error": "ERROR", "warning": "warn "}


@dataclass
class CheckOptions:
    data: str
    class_map: str | None = None
    mask_suffix: str | None = None
    image_size: int = 256
    fix_mask_size: bool = False
    infer_class_map: Path | None = None
    preflight_space: str | None = None
    json_path: Path | None = None
    html_path: Path | None = None
    progress: bool = True


@dataclass
class CheckOutcome:
    report: CheckReport
    draft: dict | None = None
    preflight: PreflightResult | None = None


def run_data_check(options: CheckOptions) -> CheckOutcome:
    spec = resolve_spec(options.data, options.class_map, options.mask_suffix)
    outcome = CheckOutcome(full_check(spec, options.image_size, fix_mask_size=options.fix_mask_size,
                                      progress=options.progress))
    if options.infer_class_map:
        outcome.draft = draft_class_map(infer_class_map(spec, progress=options.progress))
        atomic_write_text(options.infer_class_map, json.dumps(outcome.draft, indent=2))
    if options.preflight_space and not outcome.report.errors:
        from searchseg.jobs.preflight import run_preflight
        from searchseg.spaces.space import load_space
        from searchseg.tuning.search import data_config, fixed_config

        space = load_space(options.preflight_space)
        fixed = fixed_config(space, SearchOptions(space=options.preflight_space, data=options.data,
                                           class_map=options.class_map,
                                           fixed={"mask_suffix": options.mask_suffix} if options.mask_suffix else {}))
        data = load_from_config(data_config(fixed), progress=options.progress)
        outcome.preflight = run_preflight(space, fixed, data)
    if options.json_path:
        atomic_write_text(options.json_path, json.dumps({**outcome.report.to_dict(),
                                                         "preflight": outcome.preflight and asdict(outcome.preflight)},
                                                        indent=2))
    if options.html_path:
        write_check_html(outcome.report, options.html_path, outcome.preflight)
    return outcome


def format_report(outcome: CheckOutcome) -> str:
    """The terminal summary."""
    report, stats = outcome.report, outcome.report.stats
    paired = f" ({stats.pairing})" if stats.pairing and report.pairs else ""
    lines = [f"searchseg data check: {report.source}", f"  pairs: {report.pairs}{paired}"]
    if stats.mask_codec:
        class_map = f", class map {stats.class_map}" if stats.class_map else ""
        lines.append(f"  masks: {stats.mask_codec} codec{class_map}")
    if stats.image_sizes:
        by_area = sorted(stats.image_sizes, key=lambda s: int(s.split("x")[0]) * int(s.split("x")[1]))
        lines.append(f"  image sizes: {len(stats.image_sizes)} distinct, {by_area[0]} to {by_area[-1]}; image modes "
                     f"{_counts(stats.image_modes)}; mask modes {_counts(stats.mask_modes)}")
    if stats.classes:
        lines.append("  classes (pixels at full resolution; weight = suggested weighted-CE weight):")
        width = max(len(c.name) for c in stats.classes)
        for c in stats.classes:
            lines.append(f"    {c.name:<{width}}  {c.frequency:7.2%} of pixels  in {c.images:>4}/"
                         f"{report.pairs} images  weight {c.suggested_weight:.2f}")
        lines.append(f"  ignored pixels: {stats.ignored_pixels}")
    if stats.memory:
        lines.append(f"  memory of the decoded dataset at {stats.memory.image_size} px: "
                     f"{stats.memory.bytes / 2**20:.1f} MiB")
    for finding in report.findings:
        files = f"  e.g. {', '.join(finding.files[:3])}" if finding.files and finding.kind != "unreadable_file" else ""
        lines.append(f"{SEVERITY_MARK[finding.severity]} {finding.kind}: {finding.message}{files}")
    if outcome.draft:
        lines.append(f"draft class map with {len(outcome.draft['classes'])} classes written; edit names and ignore")
    if outcome.preflight:
        p = outcome.preflight
        lines += [
            f"preflight ({p.device}, {p.config}):",
            f"  initial loss {p.initial_loss:.3f} vs ln(classes) {p.expected_initial_loss:.3f}: "
            f"{'ok' if p.initial_loss_ok else 'SUSPICIOUS: check labels and the output layer'}",
            f"  over-fitting one batch: loss {p.overfit_first_loss:.3f} -> {p.overfit_last_loss:.3f} in "
            f"{p.overfit_steps} steps: {'ok' if p.overfit_ok else 'NOT LEARNING: check data and masks'}",
            f"  {p.seconds_per_batch:.3f} s per batch of {p.batch_size}, peak memory "
            f"{p.peak_memory_bytes / 2**20:.0f} MiB ({p.peak_memory_kind}), ~{p.seconds_per_epoch:.1f} s per epoch",
            f"  search cost: ~{p.expected_trial_epochs:.0f} trial-epochs with ASHA (at most "
            f"{p.max_trial_epochs}), ~{p.estimated_search_seconds / 60:.1f} min at concurrency "
            f"{p.concurrency_assumed}",
            f"  validation: {p.val_images} image(s) in {p.val_groups} independent group(s): " + (
                "a planned run can search" if p.val_groups >= MIN_INDEPENDENT_GROUPS else
                f"a planned run trains the default without a search (telling trials apart needs "
                f"{MIN_INDEPENDENT_GROUPS}); raise val_fraction or add data"),
        ]
    verdict = "errors: the data needs fixing" if report.errors else ("warnings only" if report.warnings else "clean")
    lines.append(f"result: {len(report.errors)} errors, {len(report.warnings)} warnings ({verdict})")
    return "\n".join(lines)


def _counts(counts: dict) -> str:
    return ", ".join(f"{k} ({v})" for k, v in counts.items())
