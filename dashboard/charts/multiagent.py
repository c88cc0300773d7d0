"""Multi-agent charts: the message sequence diagram and its density strip, the agent graph and the
workflow Gantt timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

from analytics.messaging import AgentGraph, GraphEdge, GraphNode
from dashboard.charts.base import COLORS, MIN_BAR_SHARE, _short, _text, base_layout
from dashboard.gantt import Gantt, GanttBar
from dashboard.sequence import Arrow

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
