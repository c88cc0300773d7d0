"""analytics.overview: time windows, KPI totals and per-bucket series. Pure: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.overview import (
    UNKNOWN_MODEL,
    TimeWindow,
    activity_over_time,
    cost_by_model,
    llm_latency_over_time,
    overview_kpis,
    overview_rollups,
    time_window,
)
from analytics.trends import SESSION_COLUMNS, SPAN_COLUMNS, empty_rollups

NOW = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)
EVENT_COLUMNS = [
    "started_at",
    "kind",
    "status",
    "model",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
]


def sessions(*rows: tuple[datetime, str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=["started_at", "end_state"])


def events(*rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=EVENT_COLUMNS)


def rollups(session_frame: pd.DataFrame, event_frame: pd.DataFrame) -> pd.DataFrame:
    """The rollup rows the overview sums: these spans and sessions, not rolled up yet."""
    spans = event_frame.reindex(columns=SPAN_COLUMNS)
    spans[["name", "agent_external_id", "error_type", "error_message"]] = ""
    return overview_rollups(empty_rollups(), spans, session_frame.reindex(columns=SESSION_COLUMNS))


def at(hours_ago: float) -> datetime:
    return NOW - timedelta(hours=hours_ago)


def window_24h() -> TimeWindow:
    return time_window("24h", now=NOW)


def test_a_range_key_gives_a_window_ending_now_with_its_bucket_size() -> None:
    window = time_window("7d", now=NOW)

    assert window == TimeWindow(NOW - timedelta(days=7), NOW, "6h", "7d")


def test_an_unknown_range_key_falls_back_to_the_last_24_hours() -> None:
    window = time_window("1y", now=NOW)

    assert (window.since, window.until, window.range_key) == (NOW - timedelta(hours=24), NOW, "24h")


def test_an_explicit_start_and_end_make_a_custom_window_and_reversed_ones_are_swapped() -> None:
    start, end = NOW - timedelta(days=3), NOW - timedelta(days=1)

    assert time_window("7d", now=NOW, start=start, end=end) == TimeWindow(
        start, end, "1h", "custom"
    )
    assert time_window(None, now=NOW, start=end, end=start).since == start


def test_a_start_without_an_end_runs_until_now_and_long_windows_get_daily_buckets() -> None:
    window = time_window(None, now=NOW, start=NOW - timedelta(days=60))

    assert (window.until, window.freq) == (NOW, "1D")


def test_kpis_of_empty_frames_are_zero_and_latency_is_unknown() -> None:
    kpis = overview_kpis(rollups(sessions(), events()))

    assert (kpis.session_count, kpis.event_count, kpis.error_rate, kpis.cost) == (0, 0, 0.0, 0.0)
    assert kpis.llm_p50_ms is None and kpis.llm_p95_ms is None


def test_kpis_count_error_kinds_and_error_statuses_and_sum_tokens_and_cost() -> None:
    frame = events(
        (at(1), "llm", "ok", "gpt-4o", 100.0, 10, 5, 0.01),
        (at(1), "llm", "error", "gpt-4o", 300.0, 20, None, 0.02),
        (at(2), "tool", "ok", "", 50.0, None, None, None),
        (at(3), "error", "unset", "", None, None, None, None),
    )
    kpis = overview_kpis(rollups(sessions((at(1), "fail"), (at(2), "success")), frame))

    assert (kpis.session_count, kpis.failed_session_count) == (2, 1)
    assert (kpis.event_count, kpis.error_count, kpis.error_rate) == (4, 2, 0.5)
    assert kpis.llm_call_count == 2
    assert kpis.llm_p50_ms == pytest.approx(200.0)
    assert kpis.llm_p95_ms == pytest.approx(290.0)
    assert (kpis.prompt_tokens, kpis.completion_tokens) == (30, 5)
    assert kpis.cost == pytest.approx(0.03)


def test_activity_is_zero_filled_for_every_bucket_of_the_window() -> None:
    frame = events(
        (at(0.1), "llm", "ok", "m", 1.0, None, None, None),
        (at(0.2), "tool", "error", "", 1.0, None, None, None),
        (at(5.2), "error", "unset", "", None, None, None, None),
    )
    activity = activity_over_time(
        rollups(sessions((at(0.1), "success")), frame), window=window_24h()
    )

    assert len(activity) == 25  # 24 full hours plus the hour `now` falls in
    assert activity["bucket"].is_monotonic_increasing
    assert activity[["sessions", "events", "errors"]].sum().tolist() == [1, 3, 2]
    last = activity.iloc[-1]
    assert (last["sessions"], last["events"], last["errors"]) == (1, 2, 1)


def test_activity_of_empty_frames_is_all_zeros() -> None:
    activity = activity_over_time(rollups(sessions(), events()), window=window_24h())

    assert activity[["sessions", "events", "errors"]].to_numpy().sum() == 0


def test_llm_latency_has_percentiles_per_bucket_and_gaps_where_no_call_was_timed() -> None:
    frame = events(
        (at(0.2), "llm", "ok", "m", 100.0, None, None, None),
        (at(0.3), "llm", "ok", "m", 300.0, None, None, None),
        (at(0.4), "tool", "ok", "", 9999.0, None, None, None),
    )
    latency = llm_latency_over_time(rollups(sessions(), frame), window=window_24h())

    last = latency.iloc[-1]
    assert (last["calls"], last["p50_ms"]) == (2, pytest.approx(200.0))
    assert latency["p95_ms"].iloc[:-1].isna().all()
    assert latency["calls"].iloc[:-1].eq(0).all()


def test_cost_by_model_puts_the_most_expensive_first_and_names_costs_without_a_model() -> None:
    frame = events(
        (at(1), "llm", "ok", "cheap", 1.0, 10, 1, 0.001),
        (at(1), "llm", "ok", "dear", 1.0, 20, 2, 0.5),
        (at(1), "llm", "ok", "dear", 1.0, 30, 3, 0.25),
        (at(1), "tool", "ok", "", 1.0, None, None, 0.1),
        (at(1), "action", "ok", "", 1.0, None, None, None),
    )
    costs = cost_by_model(rollups(sessions(), frame))

    assert costs["model"].tolist() == ["dear", UNKNOWN_MODEL, "cheap"]
    assert costs.iloc[0].to_dict() == {
        "model": "dear",
        "calls": 2,
        "prompt_tokens": 50,
        "completion_tokens": 5,
        "cost": pytest.approx(0.75),
    }


def test_cost_by_model_of_no_events_is_an_empty_frame_with_the_columns() -> None:
    costs = cost_by_model(rollups(sessions(), events()))

    assert costs.empty
    assert list(costs.columns) == ["model", "calls", "prompt_tokens", "completion_tokens", "cost"]
