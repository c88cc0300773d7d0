"""Agents by name: the per-session agent instances of a project folded into one row per name.

Pure: DataFrames in (analytics.queries), DataFrames out. Spans name an agent by its id (agentops
makes a new uuid per session), messages by its id or its name, so every id is first mapped to the
name its instances carry; an id no instance knows stands for itself (OTLP senders are often
already names). The agents page reads hourly activity per name (`agent_activity`, stored as
analytics.models.AgentNameRollup) and the span rollups (Rollup, by name), never the instances or
messages of a whole range.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pandas as pd

from analytics.trends import grouped_histogram_quantiles

# analytics.queries.agent_instance_frame: one row per Agent (per session), with the session's
# start and its end (or start) as last_seen.
INSTANCE_COLUMNS = ["name", "external_id", "session_id", "started_at", "last_seen"]
# analytics.queries.agent_rollup_frame: stored span rollups by agent name (Rollup).
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
# analytics.queries.agent_sent_frame: messages per sender and UTC hour of their start, the
# sender already named by its instance in the message's session when that has a name.
SENT_COLUMNS = ["sender", "hour", "sent", "failed"]
# agent_activity() and analytics.models.AgentNameRollup: one row per UTC hour and agent name.
ACTIVITY_COLUMNS = ["hour", "name", "session_count", "last_seen", "sent_count", "failed_count"]
# activity_totals(): one row per agent name over a range.
TOTAL_COLUMNS = ["name", "sessions", "last_seen", "sent", "failed"]
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


def agent_activity(instances: pd.DataFrame, sent: pd.DataFrame) -> pd.DataFrame:
    """Per UTC hour and agent name (ACTIVITY_COLUMNS): the sessions started in the hour with an
    instance of the name (a session with two instances of one name counts once), their latest
    last_seen, and the messages sent in the hour by the name or one of its ids.

    instances: INSTANCE_COLUMNS; sent: SENT_COLUMNS. Sorted by hour, then name."""
    mapping = name_of_id(instances)
    named = instances.assign(
        name=instances["external_id"].map(mapping),
        hour=pd.to_datetime(instances["started_at"], utc=True).dt.floor("h"),
    )
    sessions = named.groupby(["hour", "name"]).agg(
        session_count=("session_id", "nunique"), last_seen=("last_seen", "max")
    )
    messages = sent.assign(
        name=sent["sender"].map(lambda s: mapping.get(s, s)),
        hour=pd.to_datetime(sent["hour"], utc=True),
    )
    counts = messages.groupby(["hour", "name"])[["sent", "failed"]].sum()
    frame = sessions.join(counts, how="outer").reset_index()
    frame = frame.rename(columns={"sent": "sent_count", "failed": "failed_count"})
    for column in ("session_count", "sent_count", "failed_count"):
        frame[column] = frame.get(column, pd.Series(dtype="float64")).fillna(0).astype("int64")
    if "last_seen" not in frame:
        frame["last_seen"] = None
    return frame.sort_values(["hour", "name"]).reset_index(drop=True)[ACTIVITY_COLUMNS]


def activity_totals(activity: pd.DataFrame) -> pd.DataFrame:
    """TOTAL_COLUMNS per name from activity rows (ACTIVITY_COLUMNS, or TOTAL_COLUMNS rows of
    parts of a range): counts summed, last_seen the latest."""
    frame = activity.rename(
        columns={"session_count": "sessions", "sent_count": "sent", "failed_count": "failed"}
    )
    if len(frame) == 0:
        return pd.DataFrame(columns=TOTAL_COLUMNS)
    totals = frame.groupby("name").agg(
        sessions=("sessions", "sum"),
        last_seen=("last_seen", "max"),
        sent=("sent", "sum"),
        failed=("failed", "sum"),
    )
    return totals.reset_index()[TOTAL_COLUMNS]


def agent_name_stats(
    totals: pd.DataFrame, rollups: pd.DataFrame, *, days: Sequence[date]
) -> pd.DataFrame:
    """One row per agent name (NAME_STAT_COLUMNS), most calls first. `daily_calls` holds the
    calls of each day in `days`, for a sparkline.

    totals: TOTAL_COLUMNS (activity_totals); rollups: AGENT_ROLLUP_COLUMNS, agents by name."""
    base = totals.set_index("name")[["sessions", "last_seen", "sent", "failed"]]
    spans = rollups.rename(columns={"agent": "name"})
    sums = spans.groupby("name")[
        ["count", "error_count", "prompt_tokens", "completion_tokens", "cost"]
    ].sum()
    sums = sums.rename(columns={"count": "calls", "error_count": "errors"})
    p95 = grouped_histogram_quantiles(spans, by=["name"], quantiles=[0.95]).set_index("name")
    per_day = spans.groupby(["name", "day"])["count"].sum()

    frame = base.join(sums, how="outer").join(p95.rename(columns={"p95": "p95_ms"}), how="left")
    for column in (
        "sessions",
        "calls",
        "errors",
        "prompt_tokens",
        "completion_tokens",
        "sent",
        "failed",
    ):
        frame[column] = frame[column].fillna(0).astype("int64")
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
