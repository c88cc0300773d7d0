"""Agents folded by name (analytics.agent_names): pure, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from analytics.agent_names import (
    ACTIVITY_COLUMNS,
    AGENT_ROLLUP_COLUMNS,
    INSTANCE_COLUMNS,
    SENT_COLUMNS,
    TOTAL_COLUMNS,
    activity_totals,
    agent_activity,
    agent_name_stats,
    rollup_window,
)
from analytics.trends import latency_bin

D1, D2 = date(2026, 11, 30), date(2026, 12, 1)
T = datetime(2026, 12, 1, 12, tzinfo=UTC)


def rollup(agent: str, day: date, count: int, errors: int = 0, ms: float = 100.0) -> list[object]:
    return [
        agent,
        day,
        count,
        errors,
        10 * count,
        2 * count,
        0.01 * count,
        {latency_bin(ms): count},
    ]


def hour(at: datetime) -> pd.Timestamp:
    return pd.Timestamp(at).floor("h")


def test_activity_folds_instances_and_senders_by_name_per_hour() -> None:
    instances = pd.DataFrame(
        [
            ["planner", "uuid-a", 1, T - timedelta(days=1), T - timedelta(days=1)],
            ["planner", "uuid-b", 2, T, T + timedelta(minutes=5)],
            ["planner", "uuid-b2", 2, T, T + timedelta(minutes=5)],  # twice in one session
            ["", "anonymous-7", 2, T, T + timedelta(minutes=5)],
            ["coder", "uuid-c", 3, T + timedelta(minutes=20), T + timedelta(hours=2)],
        ],
        columns=INSTANCE_COLUMNS,
    )
    # Messages name senders by id (agentops) or by name (OTLP): both count for the name.
    sent = pd.DataFrame(
        [["uuid-b", hour(T), 3, 1], ["planner", hour(T), 2, 0], ["otlp-name", hour(T), 1, 1]],
        columns=SENT_COLUMNS,
    )

    activity = agent_activity(instances, sent).set_index(["hour", "name"])

    assert list(activity.columns) == ACTIVITY_COLUMNS[2:]
    now = activity.loc[hour(T)]
    assert now.loc["planner"].tolist() == [1, T + timedelta(minutes=5), 5, 1]
    assert now.loc["coder"].tolist() == [1, T + timedelta(hours=2), 0, 0]
    assert now.loc["anonymous-7"].session_count == 1
    # An id no instance knows stands for itself; it started no session.
    assert (now.loc["otlp-name"].session_count, now.loc["otlp-name"].sent_count) == (0, 1)
    assert activity.loc[hour(T - timedelta(days=1))].loc["planner"].session_count == 1


def test_totals_of_hours_equal_the_totals_of_the_whole_range() -> None:
    """The agents page sums stored hours and the partial hours at either end: any split of the
    range into hours gives what folding every instance of the range at once gives."""
    instances = pd.DataFrame(
        [
            ["planner", f"uuid-{n}", n, T + timedelta(minutes=25 * n), T + timedelta(hours=n)]
            for n in range(8)
        ],
        columns=INSTANCE_COLUMNS,
    )
    sent = pd.DataFrame(
        [[f"uuid-{n}", hour(T + timedelta(minutes=25 * n)), 1, n % 2] for n in range(8)],
        columns=SENT_COLUMNS,
    )
    whole = activity_totals(agent_activity(instances, sent))
    by_part = [
        activity_totals(agent_activity(instances[part], sent[part]))
        for part in (slice(0, 3), slice(3, 8))
    ]
    combined = activity_totals(pd.concat(by_part, ignore_index=True))

    assert whole.to_dict("records") == combined.to_dict("records")
    assert whole.loc[0].tolist() == ["planner", 8, T + timedelta(hours=7), 8, 4]


def test_span_figures_come_from_rollups_by_name_and_activity_from_totals() -> None:
    totals = pd.DataFrame(
        [["planner", 2, T, 5, 1], ["coder", 1, T, 0, 0], ["anonymous-7", 1, T, 0, 0]],
        columns=TOTAL_COLUMNS,
    )
    rollups = pd.DataFrame(
        [
            rollup("planner", D1, 4, errors=1),
            rollup("planner", D2, 6, errors=1, ms=2000.0),
            rollup("anonymous-7", D2, 1),
            rollup("otlp-name", D2, 2),
        ],
        columns=AGENT_ROLLUP_COLUMNS,
    )

    table = agent_name_stats(totals, rollups, days=[D1, D2]).set_index("name")

    assert list(table.index) == ["planner", "otlp-name", "anonymous-7", "coder"]
    planner = table.loc["planner"]
    assert (planner.sessions, planner.calls, planner.errors) == (2, 10, 2)
    assert planner.error_rate == pytest.approx(0.2)
    assert (planner.prompt_tokens, planner.completion_tokens) == (100, 20)
    assert planner.cost == pytest.approx(0.10)
    assert (planner.sent, planner.failed) == (5, 1)
    assert planner.daily_calls == [4, 6]
    assert planner.last_seen == T
    assert planner.p95_ms > 1000  # 6 of 10 calls took 2 s
    coder = table.loc["coder"]
    assert (coder.calls, coder.sent, coder.daily_calls) == (0, 0, [0, 0])
    assert pd.isna(coder.error_rate) and pd.isna(coder.p95_ms)
    assert table.loc["otlp-name"].sessions == 0


def test_no_agents_give_an_empty_table_with_every_column() -> None:
    activity = agent_activity(
        pd.DataFrame(columns=INSTANCE_COLUMNS), pd.DataFrame(columns=SENT_COLUMNS)
    )
    assert len(activity) == 0 and list(activity.columns) == ACTIVITY_COLUMNS
    table = agent_name_stats(
        activity_totals(activity), pd.DataFrame(columns=AGENT_ROLLUP_COLUMNS), days=[D1]
    )
    assert len(table) == 0 and "daily_calls" in table


def test_short_ranges_read_hourly_rollups_and_long_ones_whole_days() -> None:
    assert rollup_window(T - timedelta(hours=24, minutes=30), T)[:2] == (
        "hour",
        datetime(2026, 11, 30, 11, tzinfo=UTC),
    )
    granularity, start, days = rollup_window(T - timedelta(days=7), T)
    assert (granularity, start) == ("day", datetime(2026, 11, 24, tzinfo=UTC))
    assert days[0] == date(2026, 11, 24) and days[-1] == D2 and len(days) == 8
