"""Plotly figures that only draw the tables of ``searchseg.report.tables``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from searchseg.tracking.status import FAILED, TrialStatus

STATUS_COLOURS = {TrialStatus.COMPLETED.value: "#1f77b4", TrialStatus.EARLY_STOPPED.value: "#9aa5b1",
                  TrialStatus.TIME_BUDGET.value: "#b8a07a", TrialStatus.RUNNING.value: "#2ca02c",
                  **dict.fromkeys(FAILED, "#d62728")}
HEIGHT = 420


def _layout(figure: go.Figure, title: str, **kwargs) -> go.Figure:
    kwargs.setdefault("margin", {"l": 60, "r": 30, "t": 60, "b": 50})
    figure.update_layout(title=title, height=HEIGHT, **kwargs)
    return figure


def history_figure(table: pd.DataFrame, metric: str) -> go.Figure:
    figure = go.Figure()
    for status, rows in table.groupby("status"):
        figure.add_trace(go.Scatter(x=rows["number"], y=rows["value"], mode="markers", name=status,
                                    marker={"color": STATUS_COLOURS.get(status, "#7f7f7f"), "size": 9},
                                    text=rows["trial_id"]))
    figure.add_trace(go.Scatter(x=table["number"], y=table["best_so_far"], mode="lines", name="best so far",
                                line={"shape": "hv", "color": "#ff7f0e"}))
    return _layout(figure, "Optimisation history", xaxis_title="trial (start order)", yaxis_title=f"best {metric}")


def pareto_figure(table: pd.DataFrame, metric: str, searched: list[str]) -> go.Figure:
    """Every finished trial's best metric against its latency, the non-dominated ones joined as the front; hovering
    a point shows its configuration."""
    def hover(rows: pd.DataFrame) -> list[str]:
        return ["<br>".join([str(row["trial_id"]), *(f"{key}: {row[key]}" for key in searched if key in row)])
                for _, row in rows.iterrows()]

    front, others = table[table["front"]], table[~table["front"]]
    best = f"best_{metric}"
    figure = go.Figure([
        go.Scatter(x=others["latency_ms"], y=others[best], mode="markers", name="dominated",
                   marker={"color": "#9aa5b1", "size": 8}, hovertext=hover(others), hoverinfo="text+x+y"),
        go.Scatter(x=front["latency_ms"], y=front[best], mode="lines+markers", name="Pareto front",
                   line={"shape": "hv", "color": "#ff7f0e"}, marker={"size": 11}, hovertext=hover(front),
                   hoverinfo="text+x+y"),
    ])
    return _layout(figure, f"{metric} against latency (finished trials)",
                   xaxis_title="latency, ms per image at batch 1 (in the trial)", yaxis_title=f"best {metric}")


def parallel_figure(table: pd.DataFrame, metric: str) -> go.Figure:
    dimensions = []
    for column in table.columns.drop(["trial_id", "value"]):
        values = table[column]
        if values.isna().all():
            continue
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum() and numeric.nunique() > 3:
            positive = numeric[numeric > 0]
            log = len(positive) == numeric.notna().sum() and positive.max() / positive.min() > 20
            shown = np.log10(numeric) if log else numeric
            ticks = list(np.linspace(shown.min(), shown.max(), 5))
            dimensions.append({"label": f"log10({column})" if log else column,
                               **_with_not_applicable(shown, ticks, [f"{tick:.3g}" for tick in ticks])})
        elif numeric.notna().sum() == values.notna().sum():  # a numeric choice: its few values, on a number axis
            ticks = sorted(numeric.dropna().unique())
            dimensions.append({"label": column,
                               **_with_not_applicable(numeric, ticks, [f"{tick:.3g}" for tick in ticks])})
        else:
            labels = sorted(values.fillna("n/a").astype(str).unique())
            codes = values.fillna("n/a").astype(str).map({label: i for i, label in enumerate(labels)})
            dimensions.append({"label": column, "values": codes, "tickvals": list(range(len(labels))),
                               "ticktext": labels})
    dimensions.append({"label": metric, "values": table["value"]})
    figure = go.Figure(go.Parcoords(line={"color": table["value"], "colorscale": "Viridis", "showscale": True},
                                    dimensions=dimensions))
    return _layout(figure, f"Parameters against {metric} (finished trials)",
                   margin={"l": 80, "r": 40, "t": 110, "b": 40})


def _with_not_applicable(values: pd.Series, ticks: list, labels: list[str]) -> dict:
    """A numeric axis on which a trial without this parameter (a conditional one, e.g. ``focal_gamma`` when the
    focal loss is off) sits at "n/a" below the range: plotly drops a line that has a missing value, and the
    chart once drew 1 line for 10 trials."""
    if not values.isna().any():
        return {"values": values, "tickvals": ticks, "ticktext": labels}
    low, high = values.min(), values.max()
    below = low - 0.15 * (high - low) if high > low else low - 1.0
    return {"values": values.fillna(below), "tickvals": [below, *ticks], "ticktext": ["n/a", *labels]}


def importance_figure(table: pd.DataFrame) -> go.Figure:
    ordered = table.sort_values("importance")
    figure = go.Figure(go.Bar(x=ordered["importance"], y=ordered["parameter"], orientation="h"))
    return _layout(figure, "Parameter importance (Optuna PED-ANOVA)", xaxis_title="importance")


def curves_figure(table: pd.DataFrame, rungs: list[int], metric: str) -> go.Figure:
    figure = go.Figure()
    shown = set()
    for trial_id, rows in table.groupby("trial_id"):
        status = rows["status"].iloc[0]
        early = status == TrialStatus.EARLY_STOPPED
        figure.add_trace(go.Scatter(
            x=rows["epoch"], y=rows["value"], mode="lines+markers", name=status, legendgroup=status,
            showlegend=status not in shown, text=[trial_id] * len(rows),
            line={"color": STATUS_COLOURS.get(status, "#7f7f7f"), "dash": "dot" if early else "solid",
                  "width": 1 if early else 2},
            opacity=0.6 if early else 1.0,
        ))
        shown.add(status)
    for rung in rungs:
        figure.add_vline(x=rung, line_dash="dash", line_color="#ff7f0e", annotation_text=f"ASHA rung {rung}")
    return _layout(figure, "Learning curves (dotted grey: stopped early by ASHA)", xaxis_title="epoch",
                   yaxis_title=metric)


def heatmap_figure(table: pd.DataFrame, metric: str) -> go.Figure:
    values = table.to_numpy(dtype=float)
    text = [[("" if math.isnan(v) else f"{v:.3f}") for v in row] for row in values]
    figure = go.Figure(go.Heatmap(z=values, x=[str(c) for c in table.columns], y=[str(i) for i in table.index],
                                  text=text, texttemplate="%{text}", colorscale="Viridis",
                                  colorbar={"title": metric}))
    return _layout(figure, f"Best {metric}: {table.index.name} x {table.columns.name}",
                   xaxis_title=str(table.columns.name), yaxis_title=str(table.index.name))


def per_class_figure(table: pd.DataFrame) -> go.Figure:
    figure = go.Figure([go.Bar(x=table["class"], y=table["iou"], name="IoU"),
                        go.Bar(x=table["class"], y=table["dice"], name="Dice")])
    return _layout(figure, "Test IoU and Dice per class (final model)", yaxis_range=[0, 1], barmode="group")


def confusion_figure(table: pd.DataFrame) -> go.Figure:
    figure = go.Figure(go.Heatmap(z=table.to_numpy(), x=list(table.columns), y=list(table.index),
                                  text=[[f"{v:.2f}" for v in row] for row in table.to_numpy()],
                                  texttemplate="%{text}", colorscale="Blues", zmin=0, zmax=1))
    return _layout(figure, "Test confusion matrix (share of each true class's pixels)", xaxis_title="predicted",
                   yaxis_title="true", yaxis_autorange="reversed")


def final_curves_figure(table: pd.DataFrame) -> go.Figure:
    figure = go.Figure([go.Scatter(x=table["epoch"], y=table[column], name=column.replace("_", " "))
                        for column in table.columns if column != "epoch"])
    return _layout(figure, "Final training: loss per epoch", xaxis_title="epoch", yaxis_title="loss")
