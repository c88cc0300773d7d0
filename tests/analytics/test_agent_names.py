"""Agents folded by name (analytics.agent_names): pure, no database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest

from analytics.agent_names import (
    AGENT_ROLLUP_COLUMNS,
    INSTANCE_COLUMNS,
    SENT_COLUMNS,
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


def test_instances_of_one_name_in_different_sessions_make_one_row() -> None:
    instances = pd.DataFrame(
        [
            ["planner", "uuid-a", 1, T - timedelta(days=1)],
            ["planner", "uuid-b", 2, T],
            ["", "anonymous-7", 2, T],
            ["coder", "uuid-c", 2, T],
        ],
        columns=INSTANCE_COLUMNS,
    )
    rollups = pd.DataFrame(
        [
            rollup("uuid-a", D1, 4, errors=1),
            rollup("uuid-b", D2, 6, errors=1, ms=2000.0),
            rollup("anonymous-7", D2, 1),
            rollup("otlp-name", D2, 2),  # an id no instance knows stands for itself
        ],
        columns=AGENT_ROLLUP_COLUMNS,
    )
    # Messages name senders by id (agentops) or by name (OTLP): both count for the name.
    sent = pd.DataFrame([["uuid-a", 3, 1], ["planner", 2, 0]], columns=SENT_COLUMNS)

    table = agent_name_stats(instances, rollups, sent, days=[D1, D2]).set_index("name")

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
    table = agent_name_stats(
        pd.DataFrame(columns=INSTANCE_COLUMNS),
        pd.DataFrame(columns=AGENT_ROLLUP_COLUMNS),
        pd.DataFrame(columns=SENT_COLUMNS),
        days=[D1],
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
