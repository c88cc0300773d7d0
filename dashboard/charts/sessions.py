"""Charts of the overview and session pages: activity, calls, latency, cost and the waterfall."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts.base import COLORS, MIN_BAR_SHARE, _text, _times, base_layout
from dashboard.waterfall import WaterfallRow

KIND_COLORS = {"action": "#3b6fd8", "llm": "#8b5cf6", "tool": "#0d9488", "error": "#dc2626"}
WATERFALL_ROW_PX = 22
LABEL_CHARS = 36
WATERFALL_LABEL_PX = 250


def activity_chart(activity: pd.DataFrame) -> go.Figure:
    """Sessions started (bars) and error events (line) per bucket; columns from
    analytics.overview.activity_over_time."""
    times = _times(activity)
    fig = go.Figure(layout=base_layout())
    fig.add_bar(
        x=times,
        y=activity["sessions"].tolist(),
        name="sessions",
        marker={"color": COLORS["primary"]},
    )
    fig.add_scatter(
        x=times,
        y=activity["errors"].tolist(),
        name="error events",
        mode="lines+markers",
        line={"color": COLORS["error"], "width": 2},
        marker={"size": 4},
        yaxis="y2",
    )
    fig.update_layout(
        yaxis={"title": {"text": "sessions"}},
        yaxis2={
            "title": {"text": "errors"},
            "overlaying": "y",
            "side": "right",
            "rangemode": "tozero",
            "showgrid": False,
        },
        margin={"l": 48, "r": 48, "t": 8, "b": 36},
    )
    return fig


def daily_calls_chart(days: Sequence[Any], calls: Sequence[int]) -> go.Figure:
    """An agent's calls per UTC day (bars)."""
    fig = go.Figure(layout=base_layout())
    fig.add_bar(
        x=[str(day) for day in days],
        y=list(calls),
        name="calls",
        marker={"color": COLORS["primary"]},
    )
    fig.update_layout(
        yaxis={"title": {"text": "calls"}}, margin={"l": 48, "r": 16, "t": 8, "b": 36}
    )
    return fig


def latency_chart(latency: pd.DataFrame) -> go.Figure:
    """LLM latency p50 and p95 per bucket; columns from analytics.overview.llm_latency_over_time."""
    times = _times(latency)
    fig = go.Figure(layout=base_layout())
    for column, label, color in (
        ("p50_ms", "p50", COLORS["primary"]),
        ("p95_ms", "p95", COLORS["secondary"]),
    ):
        fig.add_scatter(
            x=times,
            y=[None if pd.isna(v) else round(float(v), 1) for v in latency[column]],
            name=label,
            mode="lines+markers",
            connectgaps=False,
            line={"color": color, "width": 2},
            marker={"size": 4},
            hovertemplate="%{y:,.0f} ms",
        )
    fig.update_layout(yaxis={"title": {"text": "ms"}})
    return fig


def cost_by_model_chart(costs: pd.DataFrame) -> go.Figure:
    """Cost per model as horizontal bars, most expensive on top; columns from
    analytics.overview.cost_by_model."""
    models = [_text(model) for model in costs["model"]]
    custom = [
        [int(row.calls), int(row.prompt_tokens), int(row.completion_tokens)]
        for row in costs.itertuples()
    ]
    fig = go.Figure(
        layout=base_layout(
            height=max(160, 40 + 28 * len(models)),
            hovermode="closest",
            margin={"l": 8, "r": 16, "t": 8, "b": 36},
        )
    )
    fig.add_bar(
        x=[round(float(v), 6) for v in costs["cost"]],
        y=models,
        orientation="h",
        customdata=custom,
        marker={"color": COLORS["secondary"]},
        hovertemplate=(
            "<b>%{y}</b><br>$%{x:,.4f}<br>%{customdata[0]:,} calls<br>"
            "%{customdata[1]:,} tokens in · %{customdata[2]:,} out<extra></extra>"
        ),
    )
    fig.update_layout(
        xaxis={"title": {"text": "USD"}, "gridcolor": COLORS["grid"], "tickprefix": "$"},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig


def _waterfall_label(row: WaterfallRow) -> dict[str, Any]:
    """A left-aligned row label in the left margin (tick labels are right-aligned, which would
    hide the indentation that shows the tree)."""
    depth = min(row.depth, 10)
    room = LABEL_CHARS - 2 * depth
    name = row.name if len(row.name) <= room else row.name[: room - 1] + "…"
    return {
        "text": "\u00a0\u00a0\u00a0" * depth + _text(name),
        "xref": "paper",
        "x": 0,
        "xanchor": "left",
        "xshift": -(WATERFALL_LABEL_PX - 4),
        "yref": "y",
        "y": 0,
        "showarrow": False,
        "font": {"size": 12, "color": COLORS["error"] if row.is_error else COLORS["text"]},
    }


def _bar_widths(rows: Sequence[WaterfallRow]) -> list[float]:
    ends = [row.start_ms + (row.duration_ms or 0) for row in rows]
    minimum = max(max(ends, default=0), 1.0) * MIN_BAR_SHARE
    return [max(row.duration_ms or 0, minimum) for row in rows]


def waterfall_chart(rows: Sequence[WaterfallRow]) -> go.Figure:
    """Span waterfall: one horizontal bar per span on a time axis (ms since the session start).

    Rows keep their tree order top to bottom, one trace per kind, error spans get a red
    outline. customdata[0] is the span pk, which static/js/charts.js uses to load the detail panel.
    """
    widths = _bar_widths(rows)
    fig = go.Figure(
        layout=base_layout(
            height=max(120, 48 + WATERFALL_ROW_PX * len(rows)),
            hovermode="closest",
            bargap=0.25,
            barmode="overlay",
            margin={"l": WATERFALL_LABEL_PX, "r": 16, "t": 28, "b": 8},
            showlegend=False,  # the page draws the kind legend in HTML, beside the tree
            meta={"row_px": WATERFALL_ROW_PX},
        )
    )
    for kind, color in KIND_COLORS.items():
        indexes = [i for i, row in enumerate(rows) if row.kind == kind]
        if not indexes:
            continue
        fig.add_bar(
            name=kind,
            orientation="h",
            y=indexes,
            x=[widths[i] for i in indexes],
            base=[rows[i].start_ms for i in indexes],
            # Without a fixed width plotly sizes bars by the gap between one trace's rows.
            width=0.7,
            marker={
                "color": color,
                "line": {
                    "color": [COLORS["error"] if rows[i].is_error else color for i in indexes],
                    "width": [2 if rows[i].is_error else 0 for i in indexes],
                },
            },
            customdata=[_waterfall_custom(rows[i]) for i in indexes],
            hovertemplate=(
                "<b>%{customdata[1]}</b><br>%{customdata[2]}"
                "<br>start +%{base:,.0f} ms · %{customdata[3]}<extra></extra>"
            ),
        )
    fig.update_layout(
        xaxis={
            "side": "top",
            "gridcolor": COLORS["grid"],
            "ticksuffix": " ms",
            "rangemode": "tozero",
            "zeroline": False,
        },
        yaxis={
            "range": [len(rows) - 0.5, -0.5],  # reversed: the first row on top
            "showticklabels": False,
            "showgrid": False,
            "fixedrange": True,
        },
        annotations=[_waterfall_label(row) | {"y": i} for i, row in enumerate(rows)],
    )
    return fig


def _waterfall_custom(row: WaterfallRow) -> list[Any]:
    duration = "no end time" if row.duration_ms is None else f"{row.duration_ms:,.0f} ms"
    kind = f"{row.kind} ({row.detailed_kind})" if row.detailed_kind else row.kind
    summary = " · ".join(part for part in (kind, row.status or "unset", row.model) if part)
    return [row.pk, _text(row.name), _text(summary), duration]
