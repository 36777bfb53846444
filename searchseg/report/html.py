"""The experiment report: one self-contained HTML file (plotly.js embedded, images inlined), opens offline."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from searchseg.io_utils import atomic_write_text
from searchseg.layout import ExperimentLayout
from searchseg.palette import IGNORE_COLOUR, class_palette, rgb_to_hex
from searchseg.report import figures as F
from searchseg.report import tables as T
from searchseg.report.experiment import Experiment, load_experiment
from searchseg.tracking.optuna_study import build_study
from searchseg.tracking.pareto import drawn_costs, pareto_table

STYLE = """body{font-family:system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.gallery img{width:min(100%,900px);image-rendering:pixelated;margin:6px 0;border:1px solid #ddd}
.legend span{margin-right:14px;white-space:nowrap}
.swatch{display:inline-block;width:14px;height:14px;margin-right:5px;border:1px solid #999;vertical-align:middle}
.note{color:#666;font-style:italic}
section{margin-bottom:28px}"""


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _kv_table(pairs: dict) -> str:
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in pairs.items())
    return f"<table>{rows}</table>"


class _Page:
    """Collects sections; plotly.js is embedded once, with the first figure."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.include_js: str | bool = True

    def section(self, title: str, body: str) -> None:
        self.parts.append(f"<section><h2>{html.escape(title)}</h2>{body}</section>")

    def figure(self, title: str, figure, available: bool, missing: str) -> None:
        if not available:
            self.section(title, f"<p class='note'>{html.escape(missing)}</p>")
            return
        div = figure.to_html(full_html=False, include_plotlyjs=self.include_js, config={"displaylogo": False})
        self.include_js = False
        self.section(title, div)


def _item(overlay: Path) -> str:
    """The test item an overlay shows, by its path in the dataset (its file name replaced the slashes)."""
    return overlay.stem.replace("__", "/")


def _class_legend(final: dict) -> str:
    """Swatches of the colours the overlays draw each class in (experiments from before colours were recorded:
    the palette the overlays then used)."""
    names = final.get("class_names", [])
    colours = final.get("class_colors") or class_palette(None, len(names)).tolist()
    swatches = [(name, rgb_to_hex(colour)) for name, colour in zip(names, colours, strict=False)]
    swatches.append(("ignored", rgb_to_hex(IGNORE_COLOUR)))
    return "<p class='legend'>" + " ".join(
        f"<span><span class='swatch' style='background:{hex_colour}'></span>{html.escape(name)}</span>"
        for name, hex_colour in swatches) + "</p>"


def render_report(exp: Experiment, refresh_seconds: int | None = None) -> str:
    importance = T.importance_table(exp, build_study(exp))
    summary = T.summary(exp)
    metric = exp.metric
    page = _Page()

    state = "running" if summary["running"] else "finished"
    overview = {
        "space": summary["space"], "state": state, "trials": f"{summary['trials']} of {summary['samples']}",
        "trials by status": ", ".join(f"{n} {s}" for s, n in summary["trials_by_status"].items()),
        f"best {metric}": summary["best_value"], "best trial": summary["best_trial"],
        "compute": f"{summary['trial_epochs']} trial-epochs of at most {summary['max_trial_epochs']}, "
                   f"{summary['wall_seconds'] / 60:.1f} trial-minutes",
    }
    if summary["test_miou"] is not None:
        spread = f" ± {summary['test_miou_std']:.4f}" if summary["test_miou_std"] else ""
        overview["test mIoU (final model)"] = f"{summary['test_miou']:.4f}{spread}"
        overview["test Dice / pixel accuracy"] = f"{summary['test_dice']:.4f} / {summary['test_pixel_accuracy']:.4f}"
    overview.update({key: summary[key] for key in ("final model", "what the search added") if key in summary})
    page.section("Summary", _kv_table(overview) + "<h3>Best configuration (searched keys)</h3>"
                 + _kv_table(summary["best_params"]))

    history = T.history_table(exp)
    page.figure("Optimisation history", F.history_figure(history, metric), len(history) > 0, "No trial yet.")
    parallel = T.parallel_table(exp)
    page.figure("Parallel coordinates", F.parallel_figure(parallel, metric), len(parallel) > 0,
                "No finished trial yet.")
    page.figure("Parameter importance", F.importance_figure(importance), len(importance) > 0,
                "Needs at least two finished trials with different parameters.")
    pareto = pareto_table(exp.trials, metric, exp.settings.mode, drawn_costs(exp.settings.objectives))
    page.figure("Accuracy against latency", F.pareto_figure(pareto, metric, exp.searched), len(pareto) > 0,
                "No finished trial with a measured latency (experiments from before trials measured their cost).")
    curves = T.curves_table(exp)
    page.figure("Learning curves", F.curves_figure(curves, T.rung_epochs(exp), metric), len(curves) > 0,
                "No epoch reported yet.")
    for rows, columns in T.heatmap_pairs(exp):
        table = T.pair_heatmap_table(exp, rows, columns)
        page.figure(f"{rows} x {columns}", F.heatmap_figure(table, metric), table.size > 0, "No finished trial yet.")

    if exp.final:
        page.figure("Per-class results", F.per_class_figure(T.per_class_table(exp)), True, "")
        page.figure("Confusion matrix", F.confusion_figure(T.confusion_table(exp)), True, "")
        final_curves = T.final_curves_table(exp)
        page.figure("Retraining curves", F.final_curves_figure(final_curves), len(final_curves) > 0,
                    "No retraining curves.")
        images = "".join(
            f"<figure><img alt='{html.escape(_item(p))}' src='data:image/png;base64,"
            f"{base64.b64encode(p.read_bytes()).decode()}'><figcaption>{html.escape(_item(p))}: image | ground truth "
            "| prediction</figcaption></figure>" for p in exp.overlays)
        page.section("Test predictions", f"{_class_legend(exp.final)}<div class='gallery'>{images}</div>"
                     if images else "<p class='note'>No overlays.</p>")
    else:
        page.section("Retrained best model", "<p class='note'>Not retrained yet: python -m searchseg.retrain "
                     f"{html.escape(str(exp.path))}</p>")

    refresh = f"<meta http-equiv='refresh' content='{refresh_seconds}'>" if refresh_seconds and exp.running else ""
    return (f"<!doctype html><html><head><meta charset='utf-8'><link rel='icon' href='data:,'>{refresh}"
            f"<title>searchseg: "
            f"{html.escape(exp.path.name)}</title><style>{STYLE}</style></head><body>"
            f"<h1>searchseg experiment {html.escape(exp.path.name)}</h1>" + "".join(page.parts) + "</body></html>")


def write_report(path: str | Path) -> Path:
    """Write ``EXPERIMENT/report.html`` from the experiment's current files."""
    exp = load_experiment(path)
    target = ExperimentLayout(exp.path).report
    atomic_write_text(target, render_report(exp))
    return target


