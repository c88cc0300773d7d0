"""Agents by name: the per-session agent instances of a project folded into one row per name.

Pure: DataFrames in (analytics.queries.agent_name_inputs), a DataFrame out. Spans and rollups name
an agent by its id (agentops makes a new uuid per session), messages by its id or its name, so
every id is first mapped to the name its instances carry; an id no instance knows stands for
itself (OTLP senders are often already names).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pandas as pd

from analytics.trends import grouped_histogram_quantiles

# analytics.queries.agent_instance_frame: one row per Agent (per session) of the range.
INSTANCE_COLUMNS = ["name", "external_id", "session_id", "last_seen"]
# analytics.queries.agent_rollup_frame: stored span rollups that name an agent.
AGENT_ROLLUP_COLUMNS = [
    "agent",
    "day",
    "count",
    "error_count",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_histogram",
]
# analytics.queries.agent_sent_frame: messages per sender (id or name) of the range.
SENT_COLUMNS = ["sender", "sent", "failed"]
NAME_STAT_COLUMNS = [
    "name",
    "sessions",
    "calls",
    "errors",
    "error_rate",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "p95_ms",
    "sent",
    "failed",
    "last_seen",
    "daily_calls",
]


# Ranges up to this long read hourly rollups; longer ones daily rollups (whole UTC days).
HOURLY_UP_TO = timedelta(days=2)


def rollup_window(since: datetime, until: datetime) -> tuple[str, datetime, list[date]]:
    """The rollup granularity for a range, its start floored to a whole bucket, and its days."""
    if until - since <= HOURLY_UP_TO:
        granularity, start = "hour", since.replace(minute=0, second=0, microsecond=0)
    else:
        granularity = "day"
        start = since.replace(hour=0, minute=0, second=0, microsecond=0)
    last = (until - timedelta(microseconds=1)).date()
    days = [start.date() + timedelta(days=n) for n in range((last - start.date()).days + 1)]
    return granularity, start, days


def name_of_id(instances: pd.DataFrame) -> dict[str, str]:
    """agent id → name. An instance without a name is called by its id."""
    names = instances["name"].where(instances["name"] != "", instances["external_id"])
    mapping = dict(zip(instances["external_id"], names, strict=True))
    # A name is also how messages may call the agent.
    mapping.update({name: name for name in names})
    return mapping


def agent_name_stats(
    instances: pd.DataFrame,
    rollups: pd.DataFrame,
    sent: pd.DataFrame,
    *,
    days: Sequence[date],
) -> pd.DataFrame:
    """One row per agent name (NAME_STAT_COLUMNS), most calls first. `daily_calls` holds the
    calls of each day in `days`, for a sparkline."""
    mapping = name_of_id(instances)
    named = instances.assign(name=instances["external_id"].map(mapping))
    base = named.groupby("name").agg(
        sessions=("session_id", "nunique"), last_seen=("last_seen", "max")
    )

    spans = rollups.assign(name=rollups["agent"].map(lambda a: mapping.get(a, a)))
    sums = spans.groupby("name")[
        ["count", "error_count", "prompt_tokens", "completion_tokens", "cost"]
    ].sum()
    sums = sums.rename(columns={"count": "calls", "error_count": "errors"})
    p95 = grouped_histogram_quantiles(spans, by=["name"], quantiles=[0.95]).set_index("name")
    per_day = spans.groupby(["name", "day"])["count"].sum()

    messages = sent.assign(name=sent["sender"].map(lambda s: mapping.get(s, s)))
    message_sums = messages.groupby("name")[["sent", "failed"]].sum()

    frame = base.join(sums, how="outer").join(p95.rename(columns={"p95": "p95_ms"}), how="left")
    frame = frame.join(message_sums, how="left")
    for column in ("sessions", "calls", "errors", "prompt_tokens", "completion_tokens"):
        frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("sent", "failed"):
        frame[column] = frame.get(column, pd.Series(dtype="float64")).fillna(0).astype("int64")
    frame["cost"] = frame["cost"].fillna(0.0).astype("float64")
    frame["error_rate"] = (frame["errors"] / frame["calls"]).where(frame["calls"] > 0)
    if "p95_ms" not in frame:
        frame["p95_ms"] = None
    frame = frame.reset_index().rename(columns={"index": "name"})
    daily = per_day.to_dict()
    frame["daily_calls"] = [
        [int(daily.get((name, day), 0)) for day in days] for name in frame["name"]
    ]
    frame = frame.sort_values(["calls", "sessions", "name"], ascending=[False, False, True])
    return frame.reset_index(drop=True)[NAME_STAT_COLUMNS]
