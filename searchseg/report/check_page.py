"""The data check as a self-contained HTML page: class balance, image sizes, findings."""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import plotly.graph_objects as go

from searchseg.data.checks import CheckReport
from searchseg.io_utils import atomic_write_text

if TYPE_CHECKING:  # the preflight imports torch; a check without it stays light
    from searchseg.jobs.preflight import PreflightResult


def class_table(report: CheckReport) -> pd.DataFrame:
    """One row per class: pixels, pixel frequency, images it occurs in, suggested weighted-CE weight."""
    return pd.DataFrame([asdict(c) for c in report.stats.classes],
                        columns=["name", "pixels", "frequency", "images", "presence", "suggested_weight"])


def size_table(report: CheckReport) -> pd.DataFrame:
    """One row per distinct image size with its count."""
    rows = [{"size": size, "width": int(size.split("x")[0]), "height": int(size.split("x")[1]), "images": count}
            for size, count in report.stats.image_sizes.items()]
    return pd.DataFrame(rows, columns=["size", "width", "height", "images"])


def findings_table(report: CheckReport) -> pd.DataFrame:
    return pd.DataFrame([{"severity": f.severity, "kind": f.kind, "message": f.message,
                          "files": "; ".join(f.files[:3])} for f in report.findings],
                        columns=["severity", "kind", "message", "files"])


def class_balance_figure(table: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Bar(x=table["name"], y=table["frequency"], text=[f"{p:.0%} of images" for p in
                                                                          table["presence"]]))
    figure.update_layout(title="Class pixel frequency (text: share of images containing the class)",
                         yaxis_tickformat=".0%", height=380)
    return figure


def size_figure(table: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Scatter(x=table["width"], y=table["height"], mode="markers", text=table["size"],
                                  marker={"size": 8 + 4 * table["images"] ** 0.5}))
    figure.update_layout(title="Image sizes (marker area: number of images)", xaxis_title="width",
                         yaxis_title="height", height=380)
    return figure


def write_check_html(report: CheckReport, path: Path, preflight: PreflightResult | None = None) -> None:
    parts = [f"<h1>searchseg data check</h1><p>{html.escape(report.source)}: {report.pairs} pairs, "
             f"{len(report.errors)} errors, {len(report.warnings)} warnings</p>"]
    classes, sizes = class_table(report), size_table(report)
    include: str | bool = "inline"
    for figure, table in ((class_balance_figure(classes), classes), (size_figure(sizes), sizes)):
        if len(table):
            parts.append(figure.to_html(full_html=False, include_plotlyjs=include))
            include = False  # plotly.js once per page
    parts.append("<h2>Findings</h2>" + findings_table(report).to_html(index=False, escape=True))
    if preflight:
        parts.append("<h2>Preflight</h2>" + pd.DataFrame([asdict(preflight)]).T.to_html(header=False))
    atomic_write_text(path, "<!doctype html><html><head><meta charset='utf-8'><title>searchseg data check</title>"
                            "</head><body>" + "".join(parts) + "</body></html>")
