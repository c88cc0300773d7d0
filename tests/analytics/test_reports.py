"""analytics.reports: the builder's tables, a report's summary and its period. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.reports import period_bounds, report_summary, report_table, table_csv
from analytics.trends import SESSION_COLUMNS, SPAN_COLUMNS, session_rollups, span_rollups

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def rollups() -> pd.DataFrame:
    rows = [
        (T0, "llm", "chat", "planner", "gpt-4o", "ok", 100.0, 10, 5, 0.5, "", ""),
        (
            T0 + timedelta(hours=1),
            "llm",
            "chat",
            "writer",
            "claude",
            "error",
            300.0,
            20,
            5,
            0.25,
            "",
            "",
        ),
        (
            T0 + timedelta(days=1),
            "tool",
            "=search",
            "planner",
            "",
            "ok",
            50.0,
            None,
            None,
            None,
            "",
            "",
        ),
    ]
    spans = span_rollups(pd.DataFrame(rows, columns=SPAN_COLUMNS))
    sessions = session_rollups(
        pd.DataFrame([(T0, "fail", 2000.0, 30, 10, 0.75, 3, 2)], columns=SESSION_COLUMNS)
    )
    return pd.concat([spans, sessions], ignore_index=True)


def test_a_report_table_groups_by_day_with_the_chosen_metrics() -> None:
    table = report_table(rollups(), grouping="day", metrics=["cost", "count"])

    assert list(table.columns) == ["bucket", "count", "cost"]
    assert list(table["bucket"]) == ["2026-11-02T00:00:00+00:00", "2026-11-03T00:00:00+00:00"]
    assert list(table["count"]) == [2, 1]
    assert list(table["cost"]) == [0.75, 0.0]


def test_a_report_table_by_model_leaves_session_rows_out() -> None:
    table = report_table(rollups(), grouping="model", metrics=["count", "error_rate"])

    assert table.to_dict("records") == [
        {"model": "", "count": 1, "error_rate": 0.0},
        {"model": "claude", "count": 1, "error_rate": 1.0},
        {"model": "gpt-4o", "count": 1, "error_rate": 0.0},
    ]


def test_unknown_groupings_and_metrics_are_refused() -> None:
    with pytest.raises(ValueError, match="grouping"):
        report_table(rollups(), grouping="planet", metrics=["count"])
    with pytest.raises(ValueError, match="vibes"):
        report_table(rollups(), grouping="day", metrics=["vibes"])


def test_report_csv_is_formula_safe() -> None:
    table = report_table(rollups(), grouping="tool", metrics=["count"])

    assert table_csv(table).splitlines() == ["tool,count", ",2", "'=search,1"]


def test_a_summary_has_headline_numbers_and_the_previous_period() -> None:
    previous = rollups().assign(bucket=lambda f: f["bucket"] - pd.Timedelta(days=7))

    summary = report_summary(rollups(), previous, since=T0, until=T0 + timedelta(days=7))

    assert (summary.session_count, summary.failed_session_count) == (1, 1)
    assert (summary.event_count, summary.error_count) == (3, 1)
    assert summary.cost == pytest.approx(0.75)
    assert summary.previous_cost == pytest.approx(0.75)
    assert summary.llm_p95_ms is not None
    assert list(summary.by_model["model"]) == ["gpt-4o", "claude"]


def test_an_empty_period_summarises_to_zeros() -> None:
    empty = rollups().iloc[0:0]

    summary = report_summary(empty, empty, since=T0, until=T0 + timedelta(days=1))

    assert (summary.event_count, summary.cost, summary.llm_p50_ms) == (0, 0.0, None)
    assert len(summary.by_agent) == 0


def test_periods_are_yesterday_and_last_monday_to_monday() -> None:
    now = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)  # a Thursday

    assert period_bounds("daily", now=now) == (
        datetime(2026, 11, 25, tzinfo=UTC),
        datetime(2026, 11, 26, tzinfo=UTC),
    )
    assert period_bounds("weekly", now=now) == (
        datetime(2026, 11, 16, tzinfo=UTC),
        datetime(2026, 11, 23, tzinfo=UTC),
    )
