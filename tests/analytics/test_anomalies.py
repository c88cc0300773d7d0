"""analytics.anomalies on synthetic telemetry with one injected anomaly of each kind. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.anomalies import AnomalyFlag, detect_anomalies, explain, format_value
from analytics.synthetic import Injection, finds, is_explained, synthetic_telemetry
from analytics.trends import session_rollups, span_rollups

NOW = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


def hours_before_now(days: int, hour: int) -> datetime:
    return NOW - timedelta(days=days) + timedelta(hours=hour)


INJECTIONS = (
    Injection(
        "tool",
        "search",
        "latency_p95",
        hours_before_now(2, 14),
        3,
        4.0,
        via=("agent", "researcher"),
    ),
    Injection("model", "claude", "error_rate", hours_before_now(1, 9), 2, 0.5),
    Injection("model", "gpt-4o-mini", "tokens_per_call", hours_before_now(3, 20), 2, 3.0),
    Injection("project", "", "cost_per_session", hours_before_now(4, 11), 2, 4.0),
    Injection(
        "agent", "writer", "latency_p95", hours_before_now(5, 16), 2, 4.0, via=("model", "gpt-4o")
    ),
    Injection("tool", "fetch", "error_rate", hours_before_now(6, 3), 3, 0.6),
)


def rollups_of(days: int, injections: tuple[Injection, ...], seed: int = 4) -> pd.DataFrame:
    data = synthetic_telemetry(
        now=NOW, days=days, sessions_per_hour=12, injections=injections, seed=seed
    )
    return pd.concat([span_rollups(data.spans), session_rollups(data.sessions)], ignore_index=True)


@pytest.fixture(scope="module")
def flags() -> list[AnomalyFlag]:
    return detect_anomalies(rollups_of(21, INJECTIONS), since=NOW - timedelta(days=7), until=NOW)


def key(flag: AnomalyFlag) -> tuple[str, str, str, datetime, datetime]:
    return (flag.subject_type, flag.subject, flag.metric, flag.window_start, flag.window_end)


@pytest.mark.parametrize(
    "injection", INJECTIONS, ids=lambda i: f"{i.metric}-{i.subject or 'project'}"
)
def test_each_injected_anomaly_is_flagged_for_its_subject_and_metric(
    flags: list[AnomalyFlag], injection: Injection
) -> None:
    assert any(finds(key(flag), injection) for flag in flags)


def test_every_flag_is_an_injected_anomaly_or_its_knock_on_effect(
    flags: list[AnomalyFlag],
) -> None:
    unexplained = [
        flag.explanation
        for flag in flags
        if not any(is_explained(key(flag), injection) for injection in INJECTIONS)
    ]

    assert unexplained == []


def test_a_flag_names_the_dimension_the_slow_calls_share(flags: list[AnomalyFlag]) -> None:
    writer = next(f for f in flags if finds(key(f), INJECTIONS[4]))

    assert writer.top_dimension == "model=gpt-4o"
    assert writer.top_share is not None and writer.top_share >= 0.5
    assert writer.explanation.startswith("p95 latency of agent writer was ")
    assert "of the slow calls used model gpt-4o" in writer.explanation


def test_a_flag_spans_the_consecutive_anomalous_hours(flags: list[AnomalyFlag]) -> None:
    search = next(f for f in flags if finds(key(f), INJECTIONS[0]))

    assert search.window_start == INJECTIONS[0].start
    assert search.window_end - search.window_start >= timedelta(hours=2)
    assert search.observed > 3 * search.baseline


def test_with_two_weeks_of_history_baselines_follow_the_hour_of_week(
    flags: list[AnomalyFlag],
) -> None:
    search = next(f for f in flags if finds(key(f), INJECTIONS[0]))

    assert search.is_seasonal
    assert "28-day hour-of-week baseline" in search.explanation


def test_with_one_week_of_history_the_baseline_is_the_last_seven_days() -> None:
    injection = Injection("tool", "search", "latency_p95", hours_before_now(1, 14), 2, 5.0)

    found = detect_anomalies(
        rollups_of(9, (injection,), seed=2), since=NOW - timedelta(days=1), until=NOW
    )

    search = next(f for f in found if finds(key(f), injection))
    assert not search.is_seasonal
    assert "7-day baseline" in search.explanation


def test_a_rerun_over_an_overlapping_window_gives_the_same_flags() -> None:
    rollups = rollups_of(10, (INJECTIONS[1],), seed=5)

    first = detect_anomalies(rollups, since=NOW - timedelta(days=2), until=NOW)
    second = detect_anomalies(rollups, since=NOW - timedelta(days=3), until=NOW)

    assert {key(f) for f in first} <= {key(f) for f in second}
    assert any(finds(key(f), INJECTIONS[1]) for f in first)


def test_steady_data_raises_no_flag() -> None:
    assert (
        detect_anomalies(rollups_of(10, (), seed=9), since=NOW - timedelta(days=3), until=NOW) == []
    )


def test_without_twelve_hours_of_history_nothing_is_judged() -> None:
    injection = Injection("tool", "search", "latency_p95", NOW - timedelta(hours=2), 2, 8.0)
    rollups = rollups_of(1, (injection,))
    last_ten_hours = rollups[rollups["bucket"] >= pd.Timestamp(NOW - timedelta(hours=10))]

    assert detect_anomalies(last_ten_hours, since=NOW - timedelta(hours=6), until=NOW) == []
    assert detect_anomalies(rollups, since=NOW - timedelta(hours=6), until=NOW) != []


def test_no_rollups_give_no_flags() -> None:
    assert detect_anomalies(pd.DataFrame(), since=NOW, until=NOW) == []


def test_the_explanation_reads_as_one_sentence() -> None:
    sentence = explain(
        "tool",
        "search",
        "latency_p95",
        observed=4100.0,
        baseline=1080.0,
        baseline_days=7,
        is_seasonal=False,
        top_dimension="model=gpt-4o",
        top_share=0.8,
    )

    assert sentence == (
        "p95 latency of tool search was 4.1 s, 3.8\u00d7 its 7-day baseline of 1.1 s; "
        "80 % of the slow calls used model gpt-4o"
    )


def test_a_zero_baseline_is_said_without_a_ratio() -> None:
    sentence = explain(
        "project",
        "",
        "cost_per_session",
        observed=0.5,
        baseline=0.0,
        baseline_days=7,
        is_seasonal=False,
        top_dimension="",
        top_share=None,
    )

    assert sentence == "cost per session was $0.5000, up from a 7-day baseline of $0.0000"


@pytest.mark.parametrize(
    ("metric", "value", "text"),
    [
        ("latency_p95", 850.0, "850 ms"),
        ("latency_p95", 4100.0, "4.1 s"),
        ("error_rate", 0.45, "45 %"),
        ("error_rate", 0.073, "7.3 %"),
        ("tokens_per_call", 1234.4, "1,234 tokens"),
        ("cost_per_session", 2.5, "$2.50"),
    ],
)
def test_values_are_formatted_as_people_read_them(metric: str, value: float, text: str) -> None:
    assert format_value(metric, value) == text
