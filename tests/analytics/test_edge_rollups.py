"""Hourly agent-edge rollups (analytics/messaging.py): built from messages, merged across hours,
and the rollup-backed agent graph (analytics/queries/messages.py: edge_frame) against the messages."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics import queries
from analytics.messaging import (
    MESSAGE_EDGE_HOUR_COLUMNS,
    edge_rollups,
    edge_stats,
    merge_edge_rollups,
    whole_hours,
)
from analytics.models import AgentEdgeRollup
from analytics.refresh import recompute_project, refresh_project
from tests.builders import make_message, make_project, make_session

T0 = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def messages(*items: tuple[datetime, str, str, str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(items, columns=MESSAGE_EDGE_HOUR_COLUMNS)


MESSAGES = messages(
    (T0 + timedelta(minutes=5), "a", "b", "processed", 100.0),
    (T0 + timedelta(minutes=50), "a", "b", "failed", None),
    (T0 + timedelta(hours=1, minutes=1), "a", "b", "processed", 300.0),
    (T0 + timedelta(hours=1, minutes=2), "b", "a", "dead_lettered", None),
    (T0 + timedelta(hours=2), "", "c", "sent", None),
)


def test_edge_rollups_count_messages_failures_and_dead_letters_per_hour_and_edge() -> None:
    rollups = edge_rollups(MESSAGES)
    got = [
        (r.hour.hour, r.sender, r.receiver, r.message_count, r.failed_count, r.dead_lettered_count)
        for r in rollups.itertuples()
    ]
    assert got == [
        (10, "a", "b", 2, 1, 0),
        (11, "a", "b", 1, 0, 0),
        (11, "b", "a", 1, 1, 1),
        (12, "", "c", 1, 0, 0),
    ]
    assert sum(rollups.iloc[0]["delivery_histogram"].values()) == 1
    assert rollups.iloc[1]["delivery_histogram"] != {}
    assert rollups.iloc[2]["delivery_histogram"] == {}


def test_merged_rollups_equal_edge_stats_up_to_the_histogram_bin() -> None:
    merged = merge_edge_rollups(edge_rollups(MESSAGES))
    exact = edge_stats(MESSAGES.drop(columns="started_at"))
    columns = ["sender", "receiver", "messages", "failed", "failure_rate"]
    pd.testing.assert_frame_equal(merged[columns], exact[columns])
    # The rank the histogram quantile takes is the lower one: a→b's delivery times are 100 and
    # 300 ms, so its p95 is in 100's bin.
    assert merged.loc[0, "p95_delivery_ms"] == pytest.approx(100.0, rel=0.05)
    assert math.isnan(merged.loc[1, "p95_delivery_ms"])


def test_merging_no_rollups_gives_no_edges() -> None:
    assert merge_edge_rollups(edge_rollups(messages())).empty


def test_whole_hours_round_the_start_up_and_the_end_down() -> None:
    assert whole_hours(T0 + timedelta(minutes=1), T0 + timedelta(hours=3, minutes=1)) == (
        T0 + timedelta(hours=1),
        T0 + timedelta(hours=3),
    )
    assert whole_hours(T0, T0 + timedelta(minutes=59)) == (T0, T0)


@pytest.mark.django_db
def test_rollup_backed_graph_equals_the_graph_from_the_messages() -> None:
    """Messages over three days, including the partial hours at both ends of the range; the
    graph from the rollups plus those partial hours matches the one from the messages alone."""
    project, _ = make_project()
    session = make_session(project, started_at=T0 - timedelta(days=2))
    statuses = ["processed", "failed", "dead_lettered", "delivered", "expired"]
    for n in range(60):
        make_message(
            session,
            message_id=f"m{n}",
            sender=["planner", "coder", "critic"][n % 3],
            receivers=[["coder"], ["critic", "planner"], []][n % 3],
            status=statuses[n % 5],
            at=T0 - timedelta(days=2) + timedelta(minutes=71 * n),
            delivery_ms=float(10 + 37 * n) if n % 4 else None,
        )
    now = T0 + timedelta(days=2)
    refresh_project(project.pk, since=T0 - timedelta(days=3), now=now)
    assert AgentEdgeRollup.objects.filter(project=project).exists()
    since, until = T0 - timedelta(days=1, minutes=25), T0 + timedelta(hours=5, minutes=10)
    graph = queries.edge_frame(project.pk, since=since, until=until)
    raw = queries.raw_edge_frame(project.pk, since=since, until=until)
    columns = ["sender", "receiver", "messages", "failed", "failure_rate"]
    pd.testing.assert_frame_equal(graph[columns], raw[columns], check_dtype=False)
    rows = queries.message_edge_frame(project.pk, since=since, until=until)
    rows["sender"] = rows["sender"].replace("", "?")
    rows["receiver"] = rows["receiver"].replace("", "?")
    lower = rows.groupby(["sender", "receiver"])["delivery_ms"].quantile(
        0.95, interpolation="lower"
    )
    for edge in graph.itertuples():
        expected = lower.get((edge.sender, edge.receiver), math.nan)
        if math.isnan(expected):
            assert math.isnan(edge.p95_delivery_ms)
        else:
            assert edge.p95_delivery_ms == pytest.approx(expected, rel=0.05)
    assert recompute_project(project.pk, now=now).rollup_rows >= 0
    assert queries.edge_frame(project.pk, since=since, until=until)[columns].equals(graph[columns])
