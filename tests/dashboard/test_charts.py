"""dashboard.charts: figures are plain JSON and agent text in them is HTML-escaped. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd

from analytics.overview import (
    activity_over_time,
    llm_latency_over_time,
    overview_rollups,
    time_window,
)
from analytics.trends import SESSION_COLUMNS, SPAN_COLUMNS, empty_rollups
from dashboard import charts
from dashboard.waterfall import WaterfallRow

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def row(pk: int, name: str, *, kind: str = "llm", depth: int = 0, **extra: object) -> WaterfallRow:
    values: dict[str, object] = {
        "pk": pk,
        "span_id": f"s{pk}",
        "parent_span_id": "",
        "name": name,
        "kind": kind,
        "status": "ok",
        "model": "",
        "depth": depth,
        "start_ms": 100.0 * pk,
        "duration_ms": 50.0,
        "has_children": False,
        "closes": 0,
    }
    values.update(extra)
    return WaterfallRow(**values)  # type: ignore[arg-type]


def test_the_waterfall_escapes_span_names_in_hover_data_and_row_labels() -> None:
    fig = charts.figure_data(charts.waterfall_chart([row(1, SCRIPT, model=SCRIPT)]))

    dumped = json.dumps(fig)
    assert SCRIPT not in dumped
    assert fig["data"][0]["customdata"][0][1] == ESCAPED
    assert ESCAPED in fig["data"][0]["customdata"][0][2]
    assert fig["layout"]["annotations"][0]["text"] == ESCAPED


def test_the_waterfall_has_one_trace_per_kind_with_rows_in_the_given_order() -> None:
    rows = [
        row(1, "plan", kind="action"),
        row(2, "call", kind="llm", depth=1),
        row(3, "search", kind="tool", depth=1),
        row(4, "think", kind="llm", depth=2),
    ]

    fig = charts.figure_data(charts.waterfall_chart(rows))

    traces = {trace["name"]: trace for trace in fig["data"]}
    assert list(traces) == ["action", "llm", "tool"]
    assert traces["llm"]["y"] == [1, 3]
    assert [c[0] for c in traces["llm"]["customdata"]] == [2, 4]
    assert traces["llm"]["base"] == [200.0, 400.0]
    labels = [a["text"] for a in fig["layout"]["annotations"]]
    assert labels == [
        "plan",
        "\u00a0" * 3 + "call",
        "\u00a0" * 3 + "search",
        "\u00a0" * 6 + "think",
    ]
    assert [a["y"] for a in fig["layout"]["annotations"]] == [0, 1, 2, 3]


def test_error_spans_get_a_red_outline_and_open_spans_a_visible_bar() -> None:
    rows = [row(1, "ok", kind="tool"), row(2, "bad", kind="tool", status="error", duration_ms=None)]

    trace = charts.figure_data(charts.waterfall_chart(rows))["data"][0]

    assert trace["marker"]["line"]["width"] == [0, 2]
    assert trace["marker"]["line"]["color"][1] == charts.COLORS["error"]
    assert trace["x"][0] == 50.0 and trace["x"][1] > 0
    assert trace["customdata"][1][3] == "no end time"


def test_long_span_names_are_cut_in_labels_but_not_in_hover_text() -> None:
    name = "x" * 80

    fig = charts.figure_data(charts.waterfall_chart([row(1, name)]))

    assert len(fig["layout"]["annotations"][0]["text"]) == charts.LABEL_CHARS
    assert fig["data"][0]["customdata"][0][1] == name


def test_the_cost_chart_escapes_model_names() -> None:
    costs = pd.DataFrame(
        [{"model": SCRIPT, "calls": 2, "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.5}]
    )

    fig = charts.figure_data(charts.cost_by_model_chart(costs))

    assert fig["data"][0]["y"] == [ESCAPED]
    assert SCRIPT not in json.dumps(fig)


def test_time_series_charts_are_plain_json_with_iso_times_and_gaps_as_nulls() -> None:
    window = time_window("24h", now=NOW)
    events = pd.DataFrame(
        [
            {
                "started_at": NOW - timedelta(minutes=30),
                "kind": "llm",
                "status": "error",
                "duration_ms": 120.0,
            }
        ]
    )
    sessions = pd.DataFrame({"started_at": [NOW - timedelta(minutes=30)], "end_state": ["fail"]})

    spans = events.reindex(columns=SPAN_COLUMNS)
    spans[["name", "agent_external_id", "model", "error_type", "error_message"]] = ""
    rollups = overview_rollups(empty_rollups(), spans, sessions.reindex(columns=SESSION_COLUMNS))
    activity = charts.figure_data(charts.activity_chart(activity_over_time(rollups, window=window)))
    latency = charts.figure_data(
        charts.latency_chart(llm_latency_over_time(rollups, window=window))
    )

    assert [trace["name"] for trace in activity["data"]] == ["sessions", "error events"]
    assert activity["data"][0]["x"][0] == "2026-11-20T12:00:00+00:00"
    assert sum(activity["data"][0]["y"]) == 1
    assert latency["data"][0]["y"][-2:] == [120.0, None]
    assert "template" not in latency["layout"]


def test_the_waterfall_hover_names_the_detailed_kind_escaped() -> None:
    rows = [
        row(1, "check", kind="action", detailed_kind="guardrail"),
        row(2, "x", detailed_kind=SCRIPT),
    ]

    fig = charts.figure_data(charts.waterfall_chart(rows))

    hover = {c[0]: c[2] for trace in fig["data"] for c in trace["customdata"]}
    assert hover[1] == "action (guardrail) · ok"
    assert hover[2] == f"llm ({ESCAPED}) · ok"
