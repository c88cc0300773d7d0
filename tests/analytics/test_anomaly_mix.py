"""analytics.anomalies on a model shared by agents whose mix changes: a planned batch job that is
most of a quiet weekend night's calls is not a slowdown of the model. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from analytics.anomalies import AnomalyFlag, detect_anomalies
from analytics.trends import SPAN_COLUMNS, span_rollups

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)
H = timedelta(hours=1)


def llm_calls(
    rng: np.random.Generator, agent: str, hour: datetime, calls: int, ms: float
) -> list[dict[str, object]]:
    durations = ms * rng.lognormal(0.0, 0.3, size=calls)
    return [
        {
            "started_at": hour + timedelta(seconds=float(rng.uniform(0, 3500))),
            "kind": "llm",
            "name": "chat",
            "agent_external_id": agent,
            "model": "claude",
            "status": "ok",
            "duration_ms": float(duration),
            "prompt_tokens": 900,
            "completion_tokens": 150,
            "cost": 0.0,
            "error_type": "",
            "error_message": "",
        }
        for duration in durations
    ]


def week_with_a_nightly_job(*, slow_support_from: datetime | None = None) -> pd.DataFrame:
    """A week of one model's calls: agent support 240 an hour on weekdays and 5 at weekends
    (2 s), and every night at 03:00 the batch job nightly_digest's 60 calls (12 s). On weekdays
    the job is a fifth of its hour's calls, at the weekend nearly all of them, so the model's
    p95 at 03:00 on Saturday is well above any weekday's. slow_support_from: support's own calls
    take ten times longer from then on (a real slowdown of the model, above the job's level)."""
    rng = np.random.default_rng(13)
    rows: list[dict[str, object]] = []
    for index in range(7 * 24):
        hour = MONDAY + index * H
        slow = slow_support_from is not None and hour >= slow_support_from
        support = 240 if hour.weekday() < 5 else 5
        rows += llm_calls(rng, "support", hour, support, 20_000 if slow else 2_000)
        if hour.hour == 3:
            rows += llm_calls(rng, "nightly_digest", hour, 60, 12_000)
    return span_rollups(pd.DataFrame(rows, columns=SPAN_COLUMNS))


def model_flags(rollups: pd.DataFrame) -> list[AnomalyFlag]:
    since = MONDAY + timedelta(days=1)
    flags = detect_anomalies(rollups, since=since, until=MONDAY + timedelta(days=7))
    return [f for f in flags if f.subject_type == "model"]


def test_a_nightly_job_that_is_most_of_a_weekend_nights_calls_raises_no_flag() -> None:
    rollups = week_with_a_nightly_job()

    assert model_flags(rollups) == []


def test_the_models_own_slowdown_on_that_weekend_is_still_flagged() -> None:
    saturday_noon = MONDAY + timedelta(days=5, hours=12)

    flags = model_flags(week_with_a_nightly_job(slow_support_from=saturday_noon))

    assert [(f.subject, f.metric) for f in flags] == [("claude", "latency_p95")]
    assert flags[0].window_start == saturday_noon
    assert flags[0].top_dimension == "agent=support"
