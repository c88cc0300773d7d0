"""Charts of the test-run pages: the outcome heatmap and the per-tier pass-rate and duration
trends."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.base import _short, _text, _times, base_layout

OUTCOME_COLORS = {
    "pass": "#16a34a",
    "fail": "#dc2626",
    "error": "#7c2d12",
    "skip": "#d1d5db",
    "xfail": "#f59e0b",
}
HEATMAP_ROW_PX = 14
HEATMAP_LABEL_CHARS = 60
TIER_COLORS = ("#3b6fd8", "#8b5cf6", "#0d9488", "#dc2626", "#f59e0b", "#6b7280")


def _outcome_colorscale(outcomes: Sequence[str]) -> list[list[Any]]:
    """Discrete colours for codes 0..n-1 on a zmin=-0.5, zmax=n-0.5 axis."""
    steps: list[list[Any]] = []
    for i, outcome in enumerate(outcomes):
        color = OUTCOME_COLORS[outcome]
        steps += [[i / len(outcomes), color], [(i + 1) / len(outcomes), color]]
    return steps


def outcome_heatmap(
    test_ids: Sequence[str],
    run_labels: Sequence[str],
    codes: np.ndarray,
    result_pks: np.ndarray,
    outcomes: Sequence[str],
) -> dict[str, Any]:
    """Tests (rows, first on top) by runs (columns, oldest left), one cell per result coloured by
    outcome; a run without the test is blank. customdata holds the result pk (0 when blank), which
    static/js/charts.js uses to load the result's detail panel. codes and result_pks are 2-D
    integer arrays (analytics.testruns.OutcomeMatrix), -1 and 0 meaning no result.

    Returns figure data (with numpy arrays; serialise it with figure_json), not a go.Figure:
    plotly deep-copies and validates every cell, 0.3 s at 500 x 200, and the page has 300 ms."""
    z = codes.astype(float)
    z[codes < 0] = np.nan
    words = np.array([*outcomes, ""], dtype=object)[codes]  # -1 picks the "" at the end
    y = [_text(test_id) for test_id in test_ids]
    trace = {
        "type": "heatmap",
        "z": z,
        "x": [_text(label) for label in run_labels],
        "y": y,
        "text": words.tolist(),
        "customdata": result_pks,
        "zmin": -0.5,
        "zmax": len(outcomes) - 0.5,
        "colorscale": _outcome_colorscale(outcomes),
        "showscale": False,
        "xgap": 1,
        "ygap": 1,
        "hoverongaps": False,
        "hovertemplate": "<b>%{y}</b><br>%{x}<br>%{text}<extra></extra>",
    }
    layout = base_layout(
        height=max(160, 60 + HEATMAP_ROW_PX * len(test_ids)),
        hovermode="closest",
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        xaxis={"showticklabels": False, "showgrid": False, "type": "category", "fixedrange": True},
        yaxis={
            "autorange": "reversed",
            "automargin": True,
            "type": "category",
            "tickfont": {"size": 10},
            "tickvals": y,
            "ticktext": [_text(_short(t, HEATMAP_LABEL_CHARS)) for t in test_ids],
            "showgrid": False,
            "fixedrange": True,
        },
    )
    return {"data": [trace], "layout": layout}


def _tier_lines(
    fig: go.Figure, trend: pd.DataFrame, column: str, hover: str, scale: float = 1.0
) -> None:
    for i, (tier, rows) in enumerate(trend.groupby("tier", sort=True)):
        fig.add_scatter(
            x=_times(rows),
            y=[round(float(v) * scale, 2) for v in rows[column]],
            name=_text(tier or "(no tier)"),
            mode="lines+markers",
            line={"color": TIER_COLORS[i % len(TIER_COLORS)], "width": 2},
            marker={"size": 5},
            hovertemplate=hover,
        )


def pass_rate_chart(trend: pd.DataFrame) -> go.Figure:
    """Pass rate (%) per bucket, one line per tier; columns from
    analytics.testruns.pass_rate_trend."""
    fig = go.Figure(layout=base_layout())
    _tier_lines(fig, trend, "pass_rate", "%{y:.1f}%", scale=100)
    fig.update_layout(yaxis={"title": {"text": "pass rate %"}, "range": [0, 101]})
    return fig


def run_duration_chart(trend: pd.DataFrame) -> go.Figure:
    """Median run time (summed test durations) per bucket, one line per tier; columns from
    analytics.testruns.duration_trend."""
    fig = go.Figure(layout=base_layout())
    _tier_lines(fig, trend, "run_ms", "%{y:,.0f} ms")
    fig.update_layout(yaxis={"title": {"text": "ms"}})
    return fig
