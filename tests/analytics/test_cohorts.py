"""analytics.cohorts: splitting sessions, the permutation test, daily totals and forecasts. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics.cohorts import (
    COHORT_SESSION_COLUMNS,
    cohort_labels,
    compare_cohorts,
    daily_totals,
    forecast_daily,
    permutation_p_value,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def sessions(*rows: dict[str, object]) -> pd.DataFrame:
    defaults: dict[str, object] = {
        "id": 0,
        "external_id": "s",
        "started_at": T0,
        "tags": [],
        "metadata": {},
        "config": {},
        "end_state": "success",
        "cost": 0.01,
        "duration_ms": 1000.0,
        "event_count": 5,
        "error_count": 0,
        "prompt_tokens": 100,
        "completion_tokens": 20,
    }
    return pd.DataFrame([defaults | row for row in rows], columns=COHORT_SESSION_COLUMNS)


def test_sessions_split_by_tag_leave_out_those_with_both_or_neither() -> None:
    frame = sessions({"tags": ["v1"]}, {"tags": ["v2"]}, {"tags": ["v1", "v2"]}, {"tags": []})

    labels = cohort_labels(frame, split="tag", a="v1", b="v2")

    assert list(labels) == ["a", "b", None, None]


def test_sessions_split_by_a_metadata_value_such_as_the_agent_version() -> None:
    frame = sessions(
        {"metadata": {"agent_version": "1.2"}},
        {"metadata": {"agent_version": 1.3}},
        {"metadata": {}},
    )

    labels = cohort_labels(frame, split="metadata", key="agent_version", a="1.2", b="1.3")

    assert list(labels) == ["a", "b", None]


def test_sessions_split_before_and_after_a_change() -> None:
    frame = sessions({"started_at": T0}, {"started_at": T0 + timedelta(hours=2)})

    labels = cohort_labels(frame, split="before_after", change_at=T0 + timedelta(hours=1))

    assert list(labels) == ["a", "b"]


def test_a_real_difference_is_significant_and_noise_is_not() -> None:
    rng = np.random.default_rng(1)
    same = permutation_p_value(rng.normal(10, 2, 40), rng.normal(10, 2, 40))
    shifted = permutation_p_value(rng.normal(10, 2, 40), rng.normal(13, 2, 40))

    assert same > 0.05
    assert shifted < 0.01


def test_a_permutation_p_value_is_never_zero() -> None:
    p = permutation_p_value(np.zeros(10), np.ones(10), permutations=99)

    assert 0 < p <= 2 / 100


def test_cohorts_are_compared_metric_by_metric() -> None:
    frame = sessions(
        *({"tags": ["old"], "event_count": 5 + i % 2, "cost": 0.01} for i in range(8)),
        *(
            {"tags": ["new"], "event_count": 9 + i % 2, "cost": 0.01, "end_state": "fail"}
            for i in range(8)
        ),
    )

    results = {
        r.metric: r
        for r in compare_cohorts(frame, cohort_labels(frame, split="tag", a="old", b="new"))
    }

    steps = results["event_count"]
    assert (steps.a_mean, steps.b_mean, steps.difference) == (5.5, 9.5, 4.0)
    assert steps.is_significant
    assert results["failed"].b_mean == 1.0
    assert not results["cost"].is_significant


def test_a_cohort_of_one_session_gets_no_p_value() -> None:
    frame = sessions({"tags": ["a"]}, {"tags": ["b"]}, {"tags": ["b"]})

    result = compare_cohorts(frame, cohort_labels(frame, split="tag", a="a", b="b"))[0]

    assert result.p_value is None
    assert not result.is_significant


def test_daily_totals_count_sessions_and_sum_cost() -> None:
    rollups = pd.DataFrame(
        {
            "bucket": [T0, T0 + timedelta(hours=1), T0 + timedelta(days=1), T0],
            "kind": ["session", "session", "session", "llm"],
            "count": [2, 3, 4, 10],
            "cost": [0.5, 0.5, 0.5, 1.25],
        }
    )

    sessions_per_day = daily_totals(rollups, metric="sessions")
    cost_per_day = daily_totals(rollups, metric="cost")

    assert list(sessions_per_day) == [5.0, 4.0]
    assert list(cost_per_day) == [1.25]


def test_with_two_weeks_of_history_the_forecast_repeats_last_week_with_an_interval() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    days = pd.date_range(
        end=pd.Timestamp(now).floor("1D") - pd.Timedelta(days=1), periods=21, freq="1D"
    )
    weekly = [10, 12, 11, 13, 30, 5, 4] * 3
    series = pd.Series(weekly, index=days, dtype="float64")

    forecast = forecast_daily(series, horizon=7, now=now)

    ahead = forecast[forecast["kind"] == "forecast"]
    assert list(ahead["value"]) == weekly[-7:]
    assert (ahead["low"] <= ahead["value"]).all() and (ahead["value"] <= ahead["high"]).all()
    assert ahead["day"].iloc[0] == pd.Timestamp(now).floor("1D")


def test_with_little_history_the_forecast_is_the_recent_mean() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    series = pd.Series(
        [4.0, 6.0], index=pd.date_range("2026-11-28", periods=2, freq="1D", tz="UTC")
    )

    forecast = forecast_daily(series, horizon=30, now=now)

    ahead = forecast[forecast["kind"] == "forecast"]
    assert len(ahead) == 30
    assert ahead["value"].iloc[0] == pytest.approx(5.0)


def test_missing_days_count_as_zero_and_no_history_forecasts_zero() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    forecast = forecast_daily(pd.Series(dtype="float64"), horizon=7, now=now)

    assert forecast[forecast["kind"] == "forecast"]["value"].sum() == 0
