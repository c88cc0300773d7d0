"""analytics.anomalies on a small project: subjects too sparse to judge hour by hour are judged
over the shortest window with enough evidence, and the flag says which. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.anomalies import AnomalyFlag, detect_anomalies
from analytics.synthetic import Injection, synthetic_telemetry
from analytics.trends import session_rollups, span_rollups

NOW = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
START = NOW - timedelta(days=2) + timedelta(hours=9)


def sparse_flags(injections: tuple[Injection, ...], seed: int, **kw: float) -> list[AnomalyFlag]:
    """Six sessions an hour: each tool is called about six times an hour."""
    data = synthetic_telemetry(
        now=NOW,
        days=14,
        sessions_per_hour=kw.get("sessions_per_hour", 6),
        injections=injections,
        seed=seed,
    )
    rollups = pd.concat([span_rollups(data.spans), session_rollups(data.sessions)])
    return detect_anomalies(rollups, since=NOW - timedelta(days=7), until=NOW)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_six_fold_latency_rise_of_a_sparse_tool_for_six_hours_is_one_flag(seed: int) -> None:
    injection = Injection("tool", "search", "latency_p95", START, 6, 6.0)

    found = [f for f in sparse_flags((injection,), seed) if f.metric == "latency_p95"]

    assert [(f.subject, f.window_start, f.window_end) for f in found] == [
        ("search", injection.start, injection.end)
    ]
    assert " calls in 6 h, " in found[0].explanation
    assert found[0].explanation.startswith("p95 latency of tool search was ")


@pytest.mark.parametrize("seed", [1, 2])
def test_half_of_a_sparse_tools_calls_failing_for_eight_hours_is_flagged_with_its_evidence(
    seed: int,
) -> None:
    injection = Injection("tool", "fetch", "error_rate", START, 8, 0.5)

    found = [f for f in sparse_flags((injection,), seed) if f.subject == "fetch"]

    assert len(found) == 1
    flag = found[0]
    assert (flag.window_start, flag.window_end) == (injection.start, injection.end)
    # "error rate of tool fetch was 45 %: 20 of 44 calls failed in 8 h against 4.1 % over 7 days"
    assert " calls failed in 8 h against " in flag.explanation
    assert flag.explanation.split(": ")[1].split(" of ")[0].isdigit()
    assert flag.explanation.endswith("100 % of the errors came from agent researcher")


@pytest.mark.parametrize("seed", [1, 2, 3, 5])
def test_steady_sparse_data_raises_no_flag(seed: int) -> None:
    assert sparse_flags((), seed) == []


@pytest.mark.parametrize("hour", [14, 15])
def test_a_slowdown_at_four_sessions_an_hour_is_found_whatever_hour_it_starts(hour: int) -> None:
    # tests/analytics/test_refresh.py's recompute case: once flagged only when it began at 14:00.
    start = datetime(2026, 11, 19, hour, 0, tzinfo=UTC)
    injection = Injection("tool", "search", "latency_p95", start, 3, 4.0)

    found = [
        f
        for f in sparse_flags((injection,), 3, sessions_per_hour=4)
        if (f.subject, f.metric) == ("search", "latency_p95")
    ]

    # Hour by hour alone, only the hour 16:00-17:00 of the 15:00 slowdown was flagged.
    assert [(f.window_start, f.window_end) for f in found] == [(injection.start, injection.end)]
