"""Plotly figures for the dashboard, built from DataFrames and waterfall rows. Pure.

Plotly renders hover text, tick labels and legend names as a small subset of HTML, so every string
that may come from an agent goes through `_text()` (html.escape) before it enters a figure. The page
receives `figure_data(fig)` through `json_script`, never as HTML.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
import pandas as pd
import plotly.graph_objects as go

from analytics.messaging import AgentGraph, GraphEdge, GraphNode
from dashboard.gantt import Gantt, GanttBar
from dashboard.sequence import Arrow
from dashboard.waterfall import WaterfallRow

COLORS = {
    "primary": "#3b6fd8",
    "secondary": "#8b5cf6",
    "error": "#dc2626",
    "muted": "#6b7280",
    "grid": "#e5e7eb",
    "text": "#1f2937",
}
KIND_COLORS = {"action": "#3b6fd8", "llm": "#8b5cf6", "tool": "#0d9488", "error": "#dc2626"}
WATERFALL_ROW_PX = 22
# A span with no duration (still open, or a point event) is drawn this share of the axis wide.
MIN_BAR_SHARE = 0.004
LABEL_CHARS = 36
WATERFALL_LABEL_PX = 250


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def base_layout(**overrides: Any) -> dict[str, Any]:
    """Layout defaults shared by every chart; keyword arguments replace top-level keys."""
    layout: dict[str, Any] = {
        "height": 260,
        "margin": {"l": 48, "r": 16, "t": 8, "b": 36},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {
            "family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
            "size": 12,
            "color": COLORS["text"],
        },
        "xaxis": {"gridcolor": COLORS["grid"], "zeroline": False},
        "yaxis": {"gridcolor": COLORS["grid"], "zeroline": False, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": 1.12, "x": 0, "bgcolor": "rgba(0,0,0,0)"},
        "hovermode": "x unified",
        "hoverlabel": {"font": {"size": 12}},
        "bargap": 0.15,
    }
    layout.update(overrides)
    return layout


def figure_data(fig: go.Figure) -> dict[str, Any]:
    """The figure as plain JSON data, for `json_script` on the page."""
    data: dict[str, Any] = json.loads(fig.to_json())
    data["layout"].pop("template", None)
    return data


def _times(frame: pd.DataFrame) -> list[str]:
    return [ts.isoformat() for ts in pd.to_datetime(frame["bucket"], utc=True)]


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


# --- Test runs ---------------------------------------------------------------------------------

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


def figure_json(data: dict[str, Any]) -> str:
    """Figure data as JSON text (numpy arrays included, NaN as null), for `json_script_text`."""
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY).decode()


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


# --- Multi-agent: sequence diagram, agent graph, workflow Gantt -------------------------------

ARROW_STYLES = {
    # group: (trace name, colour, dash, head symbol or None for a direction triangle)
    "done": ("delivered", "#16a34a", "solid", None),
    "in_flight": ("in flight", "#6b7280", "dot", None),
    "failed": ("failed ✕", "#dc2626", "solid", "x-thin-open"),
    "dead": ("dead-lettered ✕", "#7f1d1d", "dash", "x-thin-open"),
}
SEQUENCE_ROW_PX = 22
SEQUENCE_LANE_CHARS = 24
STEP_COLORS = {
    "ok": "#16a34a",
    "error": "#dc2626",
    "running": "#3b6fd8",
    "skipped": "#9ca3af",
    "cancelled": "#f59e0b",
}
CRITICAL_COLOR = "#111827"
GANTT_ROW_PX = 34


def _short(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _seconds(ms: float) -> str:
    """An offset from the first message: +850 ms, +12.35 s, +14.2 min."""
    if abs(ms) < 1000:
        return f"+{ms:,.0f} ms"
    return f"+{ms / 1000:,.2f} s" if abs(ms) < 600_000 else f"+{ms / 60000:,.1f} min"


def _arrow_custom(arrow: Arrow) -> list[Any]:
    delivery = "" if arrow.delivery_ms is None else f" · delivered in {arrow.delivery_ms:,.0f} ms"
    error = f" · {arrow.error_type}" if arrow.error_type else ""
    channel = f" on {arrow.channel}" if arrow.channel else ""
    return [
        arrow.pk,
        _text(arrow.preview) or "(no content)",
        _text(f"{arrow.sender} → {arrow.receiver}{channel}"),
        _text(f"{arrow.status}{error}{delivery}"),
        _seconds(arrow.offset_ms),
    ]


def _lines(segments: Sequence[tuple[float, float, float, float]]) -> tuple[list[Any], list[Any]]:
    """x and y for one scatter trace of separate segments (None breaks the line)."""
    xs: list[Any] = []
    ys: list[Any] = []
    for x0, y0, x1, y1 in segments:
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return xs, ys


def sequence_chart(arrows: Sequence[Arrow], agents: Sequence[str]) -> go.Figure:
    """The message sequence diagram: one lifeline per agent, one arrow per (message, receiver)
    from top to bottom in time order, coloured by status. Failed and dead-lettered arrows end
    in a ✕. customdata[0] is the message pk (static/js/charts.js opens it on click); the hover
    shows the content preview, escaped."""
    rows = max(len(arrows), 1)
    fig = go.Figure(
        layout=base_layout(
            height=90 + SEQUENCE_ROW_PX * rows,
            hovermode="closest",
            margin={"l": 70, "r": 16, "t": 56, "b": 8},
            legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "yref": "container"},
            meta={"row_px": SEQUENCE_ROW_PX, "rows": len(arrows)},
        )
    )
    lifelines = [(float(i), -0.5, float(i), rows - 0.5) for i in range(len(agents))]
    xs, ys = _lines(lifelines)
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        name="lifelines",
        hoverinfo="skip",
        showlegend=False,
        line={"color": COLORS["grid"], "width": 2},
    )
    for group, (name, color, dash, symbol) in ARROW_STYLES.items():
        chosen = [a for a in arrows if a.group == group]
        if not chosen:
            continue
        xs, ys = _lines([(a.x0, a.row, a.x1, a.row) for a in chosen])
        fig.add_scatter(
            x=xs,
            y=ys,
            mode="lines",
            name=name,
            legendgroup=group,
            hoverinfo="skip",
            line={"color": color, "width": 2, "dash": dash},
        )
        heads = [symbol or ("triangle-right" if a.x1 > a.x0 else "triangle-left") for a in chosen]
        fig.add_scatter(
            x=[a.x1 for a in chosen],
            y=[a.row for a in chosen],
            mode="markers",
            name=f"{name} (heads)",
            legendgroup=group,
            showlegend=False,
            marker={
                "color": color,
                "size": 12 if symbol else 10,
                "symbol": heads,
                "line": {"color": color, "width": 2.5 if symbol else 0},
            },
            customdata=[_arrow_custom(a) for a in chosen],
            hovertemplate=(
                "<b>%{customdata[2]}</b> %{customdata[4]}<br>%{customdata[3]}"
                "<br>%{customdata[1]}<extra></extra>"
            ),
        )
    step = max(1, len(arrows) // 40)
    fig.update_layout(
        xaxis={
            "side": "top",
            "tickvals": list(range(len(agents))),
            "ticktext": [_text(_short(agent, SEQUENCE_LANE_CHARS)) for agent in agents],
            "range": [-0.6, max(len(agents) - 0.4, 0.6)],
            "showgrid": False,
            "zeroline": False,
            "fixedrange": True,
        },
        yaxis={
            "range": [rows - 0.5, -0.5],
            "tickvals": [a.row for a in arrows[::step]],
            "ticktext": [_seconds(a.offset_ms) for a in arrows[::step]],
            "showgrid": False,
            "zeroline": False,
        },
    )
    return fig


def density_chart(bins: Sequence[tuple[Any, int]], *, window: tuple[Any, Any] | None) -> go.Figure:
    """Messages over the session's time span (the overview strip); the shown window shaded."""
    fig = go.Figure(layout=base_layout(height=90, margin={"l": 40, "r": 16, "t": 4, "b": 24}))
    fig.add_bar(
        x=[at.isoformat() for at, _ in bins],
        y=[count for _, count in bins],
        marker={"color": COLORS["primary"]},
        hovertemplate="%{y} messages<extra></extra>",
        name="messages",
    )
    if window is not None:
        fig.add_vrect(
            x0=window[0].isoformat(),
            x1=window[1].isoformat(),
            fillcolor=COLORS["secondary"],
            opacity=0.18,
            line_width=0,
        )
    fig.update_layout(showlegend=False, yaxis={"fixedrange": True}, xaxis={"fixedrange": True})
    return fig


def _edge_segment(
    start: GraphNode, end: GraphNode, *, shift: float = 0.035
) -> tuple[float, float, float, float]:
    """The edge from start to end, moved a little to its right so that A→B and B→A both show."""
    dx, dy = end.x - start.x, end.y - start.y
    length = max((dx * dx + dy * dy) ** 0.5, 1e-9)
    ox, oy = dy / length * shift, -dx / length * shift
    return start.x + ox, start.y + oy, end.x + ox, end.y + oy


def agent_graph_chart(graph: AgentGraph) -> go.Figure:
    """Agents on a circle, directed edges sender→receiver: width by message count, red by
    failure rate; hovering an edge's middle shows count, p95 delivery and failure rate."""
    fig = go.Figure(
        layout=base_layout(
            height=560,
            hovermode="closest",
            showlegend=False,
            margin={"l": 16, "r": 16, "t": 16, "b": 16},
        )
    )
    nodes = {node.agent: node for node in graph.nodes}
    busiest = max((edge.messages for edge in graph.edges), default=1)
    annotations = []
    mids: list[tuple[float, float, GraphEdge]] = []
    for edge in graph.edges:
        x0, y0, x1, y1 = _edge_segment(nodes[edge.sender], nodes[edge.receiver])
        color = COLORS["error"] if edge.failure_rate >= 0.1 else COLORS["muted"]
        annotations.append(
            {
                "x": x0 + (x1 - x0) * 0.82,
                "y": y0 + (y1 - y0) * 0.82,
                "ax": x0,
                "ay": y0,
                "xref": "x",
                "yref": "y",
                "axref": "x",
                "ayref": "y",
                "showarrow": True,
                "arrowhead": 3,
                "arrowsize": 1,
                "arrowwidth": 1 + 4 * edge.messages / busiest,
                "arrowcolor": color,
                "text": "",
                "opacity": 0.75,
            }
        )
        mids.append(((x0 + x1) / 2, (y0 + y1) / 2, edge))
    fig.add_scatter(
        x=[x for x, _, _ in mids],
        y=[y for _, y, _ in mids],
        mode="markers",
        name="edges",
        marker={
            "size": 10,
            "color": [COLORS["error"] if e.failure_rate else COLORS["muted"] for _, _, e in mids],
            "opacity": 0.6,
        },
        customdata=[
            [
                _text(f"{e.sender} → {e.receiver}"),
                e.messages,
                "n/a" if e.p95_delivery_ms is None else f"{e.p95_delivery_ms:,.0f} ms",
                f"{e.failure_rate:.1%}",
            ]
            for _, _, e in mids
        ],
        hovertemplate=(
            "<b>%{customdata[0]}</b><br>%{customdata[1]:,} messages"
            "<br>p95 delivery %{customdata[2]}<br>failure rate %{customdata[3]}<extra></extra>"
        ),
    )
    traffic = [node.sent + node.received for node in graph.nodes]
    top = max(traffic, default=1) or 1
    fig.add_scatter(
        x=[n.x for n in graph.nodes],
        y=[n.y for n in graph.nodes],
        mode="markers+text",
        name="agents",
        text=[_text(_short(n.agent, 28)) for n in graph.nodes],
        textposition="top center",
        marker={
            "size": [16 + 24 * t / top for t in traffic],
            "color": [COLORS["error"] if n.failed else COLORS["primary"] for n in graph.nodes],
            "line": {"color": "#fff", "width": 2},
        },
        customdata=[[_text(n.agent), n.sent, n.received, n.failed] for n in graph.nodes],
        hovertemplate=(
            "<b>%{customdata[0]}</b><br>sent %{customdata[1]:,} · received %{customdata[2]:,}"
            "<br>failed (sent) %{customdata[3]:,}<extra></extra>"
        ),
    )
    hidden = {"visible": False, "range": [-1.35, 1.35], "fixedrange": False}
    fig.update_layout(annotations=annotations, xaxis=hidden, yaxis={**hidden, "scaleanchor": "x"})
    return fig


def _gantt_custom(bar: GanttBar) -> list[Any]:
    wait = "" if not bar.wait_ms else f" · waited {bar.wait_ms:,.0f} ms before"
    extra = f" · {bar.error_type}" if bar.error_type else ""
    critical = " · on the critical path" if bar.is_critical else ""
    return [
        bar.step_id,
        _text(bar.name),
        _text(f"{bar.status}{extra}{critical}{wait}"),
        _text(f"agent {bar.agent or 'none'} · {bar.duration_ms:,.0f} ms"),
        _text(_short(bar.result_summary, 160)),
    ]


def gantt_chart(chart: Gantt) -> go.Figure:
    """A workflow run as a Gantt: one bar per step on its lane, coloured by status; the critical
    path drawn again on top with a thick dark outline (trace "critical path"); dependencies as
    grey lines from a step's end to its dependant's start; waits on the critical path as hatched
    bars ("wait")."""
    lanes = max(len(chart.lanes), 1)
    fig = go.Figure(
        layout=base_layout(
            height=110 + GANTT_ROW_PX * lanes,
            hovermode="closest",
            barmode="overlay",
            margin={"l": 180, "r": 16, "t": 40, "b": 36},
            legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "yref": "container"},
        )
    )
    minimum = max(chart.total_ms, 1.0) * MIN_BAR_SHARE
    by_id = {bar.step_id: bar for bar in chart.bars}
    links = [
        (
            by_id[d].start_ms + by_id[d].duration_ms,
            by_id[d].lane_index,
            bar.start_ms,
            bar.lane_index,
        )
        for bar in chart.bars
        for d in bar.depends_on
        if d in by_id
    ]
    xs, ys = _lines(links)
    fig.add_scatter(
        x=xs,
        y=ys,
        mode="lines",
        name="dependencies",
        hoverinfo="skip",
        line={"color": COLORS["muted"], "width": 1, "dash": "dot"},
    )
    waits = [b for b in chart.bars if b.is_critical and b.wait_ms]
    if waits:
        fig.add_bar(
            name="wait",
            orientation="h",
            y=[b.lane_index for b in waits],
            x=[b.wait_ms for b in waits],
            base=[b.start_ms - (b.wait_ms or 0) for b in waits],
            width=0.35,
            marker={"color": "#fde68a", "pattern": {"shape": "/"}},
            hovertemplate="idle %{x:,.0f} ms before the next step<extra></extra>",
        )
    for status, color in STEP_COLORS.items():
        chosen = [b for b in chart.bars if b.status == status]
        if chosen:
            _gantt_bars(fig, chosen, name=status, color=color, minimum=minimum, outline=None)
    critical = [b for b in chart.bars if b.is_critical]
    if critical:
        _gantt_bars(
            fig,
            critical,
            name="critical path",
            color="rgba(0,0,0,0)",
            minimum=minimum,
            outline=CRITICAL_COLOR,
        )
    fig.update_layout(
        xaxis={
            "title": {"text": "ms since the run started"},
            "rangemode": "tozero",
            "gridcolor": COLORS["grid"],
        },
        yaxis={
            "tickvals": list(range(len(chart.lanes))),
            "ticktext": [_text(_short(lane, 26)) for lane in chart.lanes],
            "range": [lanes - 0.5, -0.5],
            "fixedrange": True,
            "showgrid": False,
        },
    )
    return fig


def _gantt_bars(
    fig: go.Figure,
    bars: Sequence[GanttBar],
    *,
    name: str,
    color: str,
    minimum: float,
    outline: str | None,
) -> None:
    fig.add_bar(
        name=name,
        orientation="h",
        y=[b.lane_index for b in bars],
        x=[max(b.duration_ms, minimum) for b in bars],
        base=[b.start_ms for b in bars],
        width=0.8 if outline else 0.6,
        marker={
            "color": color,
            "opacity": 1 if outline else 0.85,
            "line": {"color": outline or color, "width": 3 if outline else 0},
        },
        customdata=[_gantt_custom(b) for b in bars],
        hovertemplate=(
            "<b>%{customdata[1]}</b><br>%{customdata[2]}<br>%{customdata[3]}"
            "<br>%{customdata[4]}<extra></extra>"
        ),
    )


# --- Analytics: trends, anomalies, error clusters, forecasts, cohorts ------------------------

SERIES_COLORS = (
    "#3b6fd8",
    "#8b5cf6",
    "#0d9488",
    "#f59e0b",
    "#dc2626",
    "#db2777",
    "#65a30d",
    "#0891b2",
)
MAX_SERIES = len(SERIES_COLORS)


def top_groups(series: pd.DataFrame, *, by: str = "count", limit: int = MAX_SERIES) -> list[str]:
    """The `limit` groups with the largest total `by`, largest first (ties by name)."""
    if len(series) == 0:
        return []
    totals = series.groupby("group")[by].sum().reset_index()
    totals = totals.sort_values([by, "group"], ascending=[False, True])
    return [str(group) for group in totals["group"].head(limit)]


def _values(frame: pd.DataFrame, column: str, scale: float = 1.0) -> list[float | None]:
    return [None if pd.isna(v) else round(float(v) * scale, 6) for v in frame[column]]


def series_chart(
    series: pd.DataFrame,
    column: str,
    *,
    y_title: str,
    hover: str = "%{y:,.2f}",
    bars: bool = False,
    scale: float = 1.0,
) -> go.Figure:
    """One line (or stacked bar) per group over time, for the top MAX_SERIES groups by calls.

    series: analytics.trends.trend_series rows (bucket, group, the metric columns)."""
    fig = go.Figure(layout=base_layout(barmode="stack" if bars else None))
    for i, group in enumerate(top_groups(series)):
        rows = series[series["group"] == group]
        name = _text(group) if group else "all"
        style = {"marker": {"color": SERIES_COLORS[i % MAX_SERIES]}, "name": name}
        template = f"{name}: {hover}<extra></extra>"
        if bars:
            fig.add_bar(
                x=_times(rows), y=_values(rows, column, scale), hovertemplate=template, **style
            )
        else:
            fig.add_scatter(
                x=_times(rows),
                y=_values(rows, column, scale),
                mode="lines+markers",
                connectgaps=False,
                line={"color": SERIES_COLORS[i % MAX_SERIES], "width": 2},
                hovertemplate=template,
                **style,
            )
    fig.update_layout(
        yaxis={"title": {"text": y_title}, "gridcolor": COLORS["grid"], "rangemode": "tozero"}
    )
    return fig


def latency_percentiles_chart(table: pd.DataFrame) -> go.Figure:
    """p50, p95 and p99 latency per group as grouped horizontal bars, slowest p95 on top.

    table: analytics.trends.merge_rollups rows with a `group` column."""
    table = table.sort_values("latency_p95_ms", ascending=False, na_position="last").head(15)
    names = [_text(group) or "(none)" for group in table["group"]]
    fig = go.Figure(
        layout=base_layout(
            height=max(180, 60 + 34 * len(names)),
            barmode="group",
            hovermode="closest",
            margin={"l": 8, "r": 16, "t": 28, "b": 36},
        )
    )
    for column, label, color in (
        ("latency_p50_ms", "p50", COLORS["primary"]),
        ("latency_p95_ms", "p95", COLORS["secondary"]),
        ("latency_p99_ms", "p99", "#f59e0b"),
    ):
        fig.add_bar(
            x=_values(table, column),
            y=names,
            name=label,
            orientation="h",
            marker={"color": color},
            hovertemplate=f"%{{y}} {label}: %{{x:,.0f}} ms<extra></extra>",
        )
    fig.update_layout(
        xaxis={"title": {"text": "ms"}, "gridcolor": COLORS["grid"], "type": "log"},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig


def resource_chart(samples: pd.DataFrame) -> go.Figure:
    """Mean of each metric sample name per bucket (memory, CPU, custom counters), one line each.

    samples: analytics.trends.resource_trend rows (bucket, name, mean, max, samples)."""
    frame = samples.rename(columns={"name": "group", "samples": "count"})
    return series_chart(frame, "mean", y_title="mean value", hover="%{y:,.1f}")


def score_chart(trend: pd.DataFrame) -> go.Figure:
    """Mean score of each score name per bucket, one line each (booleans: the share of yes).

    trend: analytics.scores.score_trend rows (name, bucket, mean, count)."""
    frame = trend.rename(columns={"name": "group"})
    return series_chart(frame, "mean", y_title="mean score", hover="%{y:,.3g}")


STATUS_COLORS = {"open": COLORS["error"], "acknowledged": "#f59e0b", "resolved": COLORS["muted"]}


def anomaly_timeline_chart(anomalies: pd.DataFrame) -> go.Figure:
    """Each anomaly as a point: when its window started (x), its metric (y), its score (size).

    anomalies: columns window_start, metric, score, status, explanation."""
    fig = go.Figure(
        layout=base_layout(
            hovermode="closest", height=220, margin={"l": 120, "r": 16, "t": 8, "b": 36}
        )
    )
    for status, color in STATUS_COLORS.items():
        rows = anomalies[anomalies["status"] == status]
        if len(rows) == 0:
            continue
        fig.add_scatter(
            x=[pd.Timestamp(t).isoformat() for t in rows["window_start"]],
            y=[_text(m) for m in rows["metric"]],
            mode="markers",
            name=status,
            marker={
                "color": color,
                "size": [min(8 + float(s), 30) for s in rows["score"]],
                "opacity": 0.8,
            },
            customdata=[[_text(e)] for e in rows["explanation"]],
            hovertemplate="%{customdata[0]}<extra></extra>",
        )
    fig.update_layout(yaxis={"type": "category", "gridcolor": COLORS["grid"]})
    return fig


def cluster_chart(clusters: pd.DataFrame) -> go.Figure:
    """The biggest error clusters as horizontal bars (count), labelled by their pattern.

    clusters: columns pattern, error_type, count."""
    top = clusters.sort_values("count", ascending=False).head(12)
    labels = [
        _short(f"{t}: {p}" if t else str(p), 60)
        for t, p in zip(top["error_type"], top["pattern"], strict=True)
    ]
    fig = go.Figure(
        layout=base_layout(
            height=max(160, 40 + 28 * len(labels)),
            hovermode="closest",
            margin={"l": 8, "r": 16, "t": 8, "b": 36},
        )
    )
    fig.add_bar(
        x=[int(c) for c in top["count"]],
        y=[_text(label) for label in labels],
        orientation="h",
        marker={"color": COLORS["error"]},
        hovertemplate="%{y}<br>%{x:,} errors<extra></extra>",
    )
    fig.update_layout(yaxis={"autorange": "reversed", "automargin": True})
    return fig


def forecast_chart(frame: pd.DataFrame, *, y_title: str) -> go.Figure:
    """Actual daily values, the forecast and its interval as a shaded band.

    frame: analytics.cohorts.forecast_daily rows (day, kind, value, low, high)."""
    actual = frame[frame["kind"] == "actual"]
    forecast = frame[frame["kind"] == "forecast"]
    days = [pd.Timestamp(d).isoformat() for d in forecast["day"]]
    fig = go.Figure(layout=base_layout())
    fig.add_scatter(
        x=days + days[::-1],
        y=_values(forecast, "high") + _values(forecast, "low")[::-1],
        fill="toself",
        fillcolor="rgba(139, 92, 246, 0.18)",
        line={"width": 0},
        hoverinfo="skip",
        name="80 % interval",
    )
    fig.add_scatter(
        x=[pd.Timestamp(d).isoformat() for d in actual["day"]],
        y=_values(actual, "value"),
        mode="lines+markers",
        name="actual",
        line={"color": COLORS["primary"], "width": 2},
        marker={"size": 4},
    )
    fig.add_scatter(
        x=days,
        y=_values(forecast, "value"),
        mode="lines+markers",
        name="forecast",
        line={"color": COLORS["secondary"], "width": 2, "dash": "dash"},
        marker={"size": 4},
    )
    fig.update_layout(
        yaxis={"title": {"text": y_title}, "gridcolor": COLORS["grid"], "rangemode": "tozero"}
    )
    return fig


def cohort_chart(differences: pd.DataFrame) -> go.Figure:
    """Relative difference (b vs a) per metric; significant differences in full colour.

    differences: analytics.cohorts.CohortDifference fields as columns."""
    rows = differences[differences["relative"].notna()]
    fig = go.Figure(
        layout=base_layout(hovermode="closest", margin={"l": 8, "r": 16, "t": 8, "b": 36})
    )
    fig.add_bar(
        x=[round(float(v) * 100, 2) for v in rows["relative"]],
        y=[_text(label) for label in rows["label"]],
        orientation="h",
        marker={
            "color": [COLORS["secondary"] if s else "#c4b5fd" for s in rows["is_significant"]],
        },
        customdata=[[f"{p:.3f}" if p == p else "n/a"] for p in rows["p_value"]],
        hovertemplate="%{y}: %{x:+.1f} %<br>p = %{customdata[0]}<extra></extra>",
    )
    fig.update_layout(
        xaxis={"title": {"text": "b vs a (%)"}, "gridcolor": COLORS["grid"], "zeroline": True},
        yaxis={"autorange": "reversed", "automargin": True},
    )
    return fig
