"""Edge statistics, the agent graph, failure patterns, causality and agent activity
(analytics/messaging.py): pure."""

from __future__ import annotations

import math

import pandas as pd

from analytics.messaging import (
    agent_activity,
    agent_graph,
    causality,
    edge_stats,
    edge_stats_from_aggregates,
    failure_patterns,
)


def rows(*items: tuple[str, str, str, float | None]) -> pd.DataFrame:
    return pd.DataFrame(items, columns=["sender", "receiver", "status", "delivery_ms"])


MESSAGES = rows(
    ("a", "b", "processed", 100.0),
    ("a", "b", "failed", None),
    ("a", "b", "processed", 300.0),
    ("b", "a", "dead_lettered", None),
    ("", "c", "sent", None),
)


def test_edge_stats_count_failures_and_p95_per_edge() -> None:
    edges = edge_stats(MESSAGES).to_dict("records")
    assert [(e["sender"], e["receiver"], e["messages"], e["failed"]) for e in edges] == [
        ("a", "b", 3, 1),
        ("?", "c", 1, 0),
        ("b", "a", 1, 1),
    ]
    assert edges[0]["failure_rate"] == 1 / 3
    assert edges[0]["p95_delivery_ms"] == 290.0
    assert math.isnan(edges[1]["p95_delivery_ms"])


def test_database_aggregates_come_out_in_the_same_shape() -> None:
    aggregated = pd.DataFrame(
        [("a", "b", 3, 1, 290.0), ("", "c", 1, 0, None), ("b", "a", 1, 1, None)],
        columns=["sender", "receiver", "messages", "failed", "p95_delivery_ms"],
    )
    pd.testing.assert_frame_equal(edge_stats_from_aggregates(aggregated), edge_stats(MESSAGES))


def test_agent_graph_puts_the_busiest_agent_on_top_and_keeps_both_directions() -> None:
    graph = agent_graph(edge_stats(MESSAGES))
    assert graph.nodes[0].agent == "a"
    assert (graph.nodes[0].x, graph.nodes[0].y) == (0.0, 1.0)
    assert {(e.sender, e.receiver) for e in graph.edges} == {("a", "b"), ("b", "a"), ("?", "c")}
    small = agent_graph(edge_stats(MESSAGES), max_nodes=2)
    assert {(e.sender, e.receiver) for e in small.edges} == {("a", "b"), ("b", "a")}


def test_failure_patterns_by_error_type_and_by_edge() -> None:
    dead = [
        {"error_type": "Timeout", "sender": "a", "receivers": ["b", "c"], "count": 2},
        {"error_type": "", "sender": "a", "receivers": ["b"], "count": 1},
    ]
    assert failure_patterns(dead, key="error_type") == [
        {"error_type": "Timeout", "count": 2},
        {"error_type": "(no error type)", "count": 1},
    ]
    assert failure_patterns(dead, key="edge")[0] == {
        "edge": "a → b",
        "sender": "a",
        "receiver": "b",
        "count": 3,
    }


def test_causality_walks_ancestors_and_descendants_and_survives_cycles() -> None:
    links = [("m1", ""), ("m2", "m1"), ("m3", "m2"), ("m4", "m2"), ("m5", "m3"), ("x", "x")]
    assert causality("m3", links) == (["m2", "m1"], ["m5"])
    assert causality("m1", links) == ([], ["m2", "m3", "m4", "m5"])
    assert causality("x", links) == ([], [])


def test_agent_activity_sums_calls_tokens_cost_and_latency() -> None:
    spans = pd.DataFrame(
        [
            ("llm", "ok", 100.0, 10, 5, 0.01),
            ("llm", "error", 300.0, 20, None, None),
            ("tool", "ok", 200.0, None, None, None),
            ("error", "error", None, None, None, None),
        ],
        columns=["kind", "status", "duration_ms", "prompt_tokens", "completion_tokens", "cost"],
    )
    activity = agent_activity(spans)
    assert (activity.llm_calls, activity.tool_calls, activity.errors) == (2, 1, 2)
    assert (activity.prompt_tokens, activity.completion_tokens, activity.cost) == (30, 5, 0.01)
    assert (activity.latency_p50_ms, activity.latency_p95_ms) == (200.0, 290.0)
    assert agent_activity(spans.iloc[0:0]).llm_calls == 0
