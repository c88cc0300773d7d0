"""Inter-agent message analytics: edge statistics, the agent graph's layout, causality. Pure.

DataFrames in, DataFrames or frozen dataclasses out; no I/O, no settings, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from analytics.span_errors import error_mask
from analytics.trends import grouped_histogram_quantiles, latency_histograms

FAILURE_STATUSES = ("failed", "dead_lettered", "expired")
# analytics.queries.message_edge_frame: one row per (message, receiver).
MESSAGE_EDGE_COLUMNS = ["sender", "receiver", "status", "delivery_ms"]
EDGE_COLUMNS = ["sender", "receiver", "messages", "failed", "failure_rate", "p95_delivery_ms"]
# analytics.queries.message_edge_rollup_frame: MESSAGE_EDGE_COLUMNS plus the message's start.
MESSAGE_EDGE_HOUR_COLUMNS = ["started_at", *MESSAGE_EDGE_COLUMNS]
# analytics.models.AgentEdgeRollup, one row per (hour, sender, receiver).
EDGE_ROLLUP_COLUMNS = [
    "hour",
    "sender",
    "receiver",
    "message_count",
    "failed_count",
    "dead_lettered_count",
    "delivery_histogram",
]
HOUR = timedelta(hours=1)


def edge_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """Sender→receiver edges from one row per (message, receiver) (MESSAGE_EDGE_COLUMNS):
    EDGE_COLUMNS, busiest edge first. p95_delivery_ms is NaN when no message on the edge has a
    delivery time. A missing sender or receiver is "?"."""
    if rows.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    frame = rows.assign(
        sender=rows["sender"].replace("", "?").fillna("?"),
        receiver=rows["receiver"].replace("", "?").fillna("?"),
        is_failed=rows["status"].isin(FAILURE_STATUSES),
        delivery_ms=pd.to_numeric(rows["delivery_ms"], errors="coerce"),
    )
    grouped = frame.groupby(["sender", "receiver"], sort=False)
    edges = grouped.agg(
        messages=("status", "size"),
        failed=("is_failed", "sum"),
        p95_delivery_ms=(
            "delivery_ms",
            lambda s: s.quantile(0.95) if s.notna().any() else math.nan,
        ),
    ).reset_index()
    edges["failed"] = edges["failed"].astype(int)
    edges["failure_rate"] = edges["failed"] / edges["messages"]
    edges = edges.sort_values(["messages", "sender", "receiver"], ascending=[False, True, True])
    return edges[EDGE_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class GraphNode:
    agent: str
    x: float
    y: float
    sent: int
    received: int
    failed: int


@dataclass(frozen=True)
class GraphEdge:
    sender: str
    receiver: str
    messages: int
    failed: int
    failure_rate: float
    p95_delivery_ms: float | None


@dataclass(frozen=True)
class AgentGraph:
    nodes: list[GraphNode]
    edges: list[GraphEdge]


def agent_graph(edges: pd.DataFrame, *, max_nodes: int = 60) -> AgentGraph:
    """Nodes (agents on a circle, busiest first clockwise from the top) and edges from
    edge_stats(); agents past max_nodes (by traffic) are left out with their edges."""
    traffic: dict[str, list[int]] = {}
    for row in edges.itertuples(index=False):
        traffic.setdefault(str(row.sender), [0, 0, 0])
        traffic.setdefault(str(row.receiver), [0, 0, 0])
        traffic[str(row.sender)][0] += int(row.messages)
        traffic[str(row.sender)][2] += int(row.failed)
        traffic[str(row.receiver)][1] += int(row.messages)
    ranked = sorted(traffic, key=lambda agent: (-(traffic[agent][0] + traffic[agent][1]), agent))
    kept = ranked[:max_nodes]
    nodes = []
    for i, agent in enumerate(kept):
        angle = math.pi / 2 - 2 * math.pi * i / max(len(kept), 1)
        nodes.append(
            GraphNode(agent, round(math.cos(angle), 4), round(math.sin(angle), 4), *traffic[agent])
        )
    shown = set(kept)
    graph_edges = [
        GraphEdge(
            sender=str(row.sender),
            receiver=str(row.receiver),
            messages=int(row.messages),
            failed=int(row.failed),
            failure_rate=float(row.failure_rate),
            p95_delivery_ms=None if pd.isna(row.p95_delivery_ms) else float(row.p95_delivery_ms),
        )
        for row in edges.itertuples(index=False)
        if row.sender in shown and row.receiver in shown
    ]
    return AgentGraph(nodes=nodes, edges=graph_edges)


def failure_patterns(rows: Iterable[Mapping[str, Any]], *, key: str) -> list[dict[str, Any]]:
    """Dead letters grouped by `key` ("error_type" or "edge"), largest first: [{key, count}];
    edges also carry `sender` and `receiver` (each receiver is its own edge). Each row has
    error_type, sender, receivers (a list) and count (default 1)."""
    counts: dict[tuple[str, str, str], int] = {}
    for row in rows:
        if key == "edge":
            sender = row.get("sender") or "?"
            for receiver in row.get("receivers") or ["?"]:
                label = (f"{sender} → {receiver or '?'}", sender, receiver or "?")
                counts[label] = counts.get(label, 0) + int(row.get("count", 1))
        else:
            label = (row.get("error_type") or "(no error type)", "", "")
            counts[label] = counts.get(label, 0) + int(row.get("count", 1))
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    if key != "edge":
        return [{key: label, "count": count} for (label, _, _), count in ordered]
    return [
        {key: label, "sender": sender, "receiver": receiver, "count": count}
        for (label, sender, receiver), count in ordered
    ]


def causality(
    message_id: str, links: Sequence[tuple[str, str]], *, limit: int = 200
) -> tuple[list[str], list[str]]:
    """Ancestors (nearest first) and descendants (breadth first) of message_id, given
    (message_id, caused_by) pairs. Cycles and repeats are ignored; at most `limit` of each."""
    parent = {child: cause for child, cause in links if cause}
    children: dict[str, list[str]] = {}
    for child, cause in links:
        if cause:
            children.setdefault(cause, []).append(child)
    ancestors: list[str] = []
    seen = {message_id}
    current = parent.get(message_id)
    while current and current not in seen and len(ancestors) < limit:
        ancestors.append(current)
        seen.add(current)
        current = parent.get(current)
    descendants: list[str] = []
    queue = list(children.get(message_id, []))
    while queue and len(descendants) < limit:
        child = queue.pop(0)
        if child in seen:
            continue
        seen.add(child)
        descendants.append(child)
        queue.extend(children.get(child, []))
    return ancestors, descendants


def edge_stats_from_aggregates(rows: pd.DataFrame) -> pd.DataFrame:
    """EDGE_COLUMNS from edges the database already aggregated (sender, receiver, messages,
    failed, p95_delivery_ms), in edge_stats()'s order."""
    if rows.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    edges = rows.assign(
        sender=rows["sender"].replace("", "?").fillna("?"),
        receiver=rows["receiver"].replace("", "?").fillna("?"),
        messages=rows["messages"].astype(int),
        failed=rows["failed"].astype(int),
        p95_delivery_ms=pd.to_numeric(rows["p95_delivery_ms"], errors="coerce"),
    )
    edges["failure_rate"] = edges["failed"] / edges["messages"]
    edges = edges.sort_values(["messages", "sender", "receiver"], ascending=[False, True, True])
    return edges[EDGE_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class AgentActivity:
    """What an agent did in its session, from its spans (AGENT_SPAN_COLUMNS)."""

    llm_calls: int
    tool_calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost: float
    latency_p50_ms: float | None
    latency_p95_ms: float | None


def agent_activity(spans: pd.DataFrame) -> AgentActivity:
    """LLM and tool calls, errors (error kind or status), tokens, cost, and p50/p95 latency of
    its LLM and tool calls. Columns: kind, status, duration_ms, prompt_tokens,
    completion_tokens, cost."""
    if spans.empty:
        return AgentActivity(0, 0, 0, 0, 0, 0.0, None, None)
    calls = spans[spans["kind"].isin(["llm", "tool"])]
    durations = pd.to_numeric(calls["duration_ms"], errors="coerce").dropna()
    is_error = error_mask(spans)
    return AgentActivity(
        llm_calls=int((spans["kind"] == "llm").sum()),
        tool_calls=int((spans["kind"] == "tool").sum()),
        errors=int(is_error.sum()),
        prompt_tokens=int(pd.to_numeric(spans["prompt_tokens"], errors="coerce").fillna(0).sum()),
        completion_tokens=int(
            pd.to_numeric(spans["completion_tokens"], errors="coerce").fillna(0).sum()
        ),
        cost=float(pd.to_numeric(spans["cost"], errors="coerce").fillna(0).sum()),
        latency_p50_ms=float(durations.quantile(0.5)) if len(durations) else None,
        latency_p95_ms=float(durations.quantile(0.95)) if len(durations) else None,
    )


def whole_hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The first and the end of the whole UTC hours inside [since, until); first >= end when
    the range holds no whole hour."""
    first = since.replace(minute=0, second=0, microsecond=0)
    if first < since:
        first += HOUR
    return first, until.replace(minute=0, second=0, microsecond=0)


def edge_rollups(rows: pd.DataFrame) -> pd.DataFrame:
    """Hourly sender→receiver rollups (EDGE_ROLLUP_COLUMNS, sorted by hour, sender, receiver)
    from one row per (message, receiver) (MESSAGE_EDGE_HOUR_COLUMNS, started_at in UTC). A
    missing sender or receiver stays ""; delivery times go into latency_histograms() bins."""
    if rows.empty:
        return pd.DataFrame(columns=EDGE_ROLLUP_COLUMNS)
    keys = ["hour", "sender", "receiver"]
    frame = rows.assign(
        hour=pd.to_datetime(rows["started_at"], utc=True).dt.floor("1h"),
        sender=rows["sender"].fillna(""),
        receiver=rows["receiver"].fillna(""),
        failed_count=rows["status"].isin(FAILURE_STATUSES).astype("int64"),
        dead_lettered_count=(rows["status"] == "dead_lettered").astype("int64"),
        duration_ms=pd.to_numeric(rows["delivery_ms"], errors="coerce"),
    )
    grouped = frame.groupby(keys, sort=True)
    sums = grouped[["failed_count", "dead_lettered_count"]].sum()
    sums.insert(0, "message_count", grouped.size())
    timed = frame.dropna(subset=["duration_ms"])
    histograms = latency_histograms(timed, keys).reindex(sums.index)
    sums["delivery_histogram"] = [h if isinstance(h, dict) else {} for h in histograms]
    return sums.reset_index()[EDGE_ROLLUP_COLUMNS]


def merge_edge_rollups(rollups: pd.DataFrame) -> pd.DataFrame:
    """EDGE_COLUMNS (as edge_stats) from hourly edge rollups (EDGE_ROLLUP_COLUMNS) summed over
    their hours. p95_delivery_ms is the middle of the histogram bin that holds the 95th
    percentile (within about 5 % of the exact value), NaN when no message had a delivery time."""
    if rollups.empty:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    by = ["sender", "receiver"]
    sums = rollups.groupby(by, sort=False)[["message_count", "failed_count"]].sum()
    quantiles = grouped_histogram_quantiles(
        rollups.rename(columns={"delivery_histogram": "latency_histogram"}),
        by=by,
        quantiles=(0.95,),
    )
    p95 = quantiles.set_index(by)["p95"] if len(quantiles) else pd.Series(dtype="float64")
    edges = sums.assign(p95_delivery_ms=p95.reindex(sums.index)).reset_index()
    return edge_stats_from_aggregates(
        edges.rename(columns={"message_count": "messages", "failed_count": "failed"})
    )
