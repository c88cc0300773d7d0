"""The overview page's numbers: time windows, KPI totals and per-bucket series, all summed from
rollup rows (stored ones and those of the spans not rolled up yet), never from every span. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from analytics.trends import (
    ROLLUP_COLUMNS,
    SESSION_KIND,
    empty_rollups,
    merge_rollups,
    session_rollups,
    span_rollups,
)

# Range key -> (length, bucket size). Buckets keep every chart at roughly 24-60 points.
RANGES: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "1h"),
    "7d": (timedelta(days=7), "6h"),
    "14d": (timedelta(days=14), "12h"),
    "30d": (timedelta(days=30), "1D"),
    "90d": (timedelta(days=90), "1D"),
}
DEFAULT_RANGE = "24h"
# The longest range any page, API list or report may ask for.
MAX_RANGE_DAYS = 400
UNKNOWN_MODEL = "(no model)"


@dataclass(frozen=True)
class TimeWindow:
    """A half-open window [since, until) and the bucket size its charts use."""

    since: datetime
    until: datetime
    freq: str
    range_key: str  # one of RANGES, or "custom" for an explicit from/to


@dataclass(frozen=True)
class OverviewKpis:
    session_count: int
    failed_session_count: int
    event_count: int
    error_count: int
    error_rate: float  # error events / events, 0 when there are no events
    llm_call_count: int
    llm_p50_ms: float | None
    llm_p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float


def time_window(
    range_key: str | None,
    *,
    now: datetime,
    start: datetime | None = None,
    end: datetime | None = None,
) -> TimeWindow:
    """The window for a range key, or for an explicit start/end (either may be missing).

    An explicit start wins over the range key; a missing end means `now`. An unknown key falls back
    to DEFAULT_RANGE. A reversed start/end is swapped rather than refused.
    """
    if start is not None or end is not None:
        until = end or now
        since = start or until - RANGES[DEFAULT_RANGE][0]
        if since > until:
            since, until = until, since
        return TimeWindow(since, until, _freq_for(until - since), "custom")
    key = range_key if range_key in RANGES else DEFAULT_RANGE
    length, freq = RANGES[key]
    return TimeWindow(now - length, now, freq, key)


def _freq_for(length: timedelta) -> str:
    if length <= timedelta(days=2):
        return "1h"
    if length <= timedelta(days=10):
        return "6h"
    if length <= timedelta(days=20):
        return "12h"
    if length <= timedelta(days=120):
        return "1D"
    return "7D"


def overview_rollups(
    stored: pd.DataFrame, spans: pd.DataFrame, sessions: pd.DataFrame
) -> pd.DataFrame:
    """Hourly rollup rows of a window: the stored ones plus those of the spans and sessions not
    rolled up yet (analytics.trends.SPAN_COLUMNS and SESSION_COLUMNS). Returns ROLLUP_COLUMNS."""
    parts = [
        part
        for part in (stored, span_rollups(spans, freq="1h"), session_rollups(sessions, freq="1h"))
        if len(part)
    ]
    frame = pd.concat(parts, ignore_index=True)[ROLLUP_COLUMNS] if parts else empty_rollups()
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def _kind(rollups: pd.DataFrame, *, sessions: bool) -> pd.DataFrame:
    is_session = rollups["kind"] == SESSION_KIND
    return rollups[is_session if sessions else ~is_session]


def _sum(frame: pd.DataFrame, column: str) -> float:
    return float(pd.to_numeric(frame[column]).sum()) if len(frame) else 0.0


def overview_kpis(rollups: pd.DataFrame) -> OverviewKpis:
    """Totals for the KPI tiles, from overview_rollups(): sessions and failed sessions from the
    session rows; events, errors (error kind or status), tokens and cost from the span rows; LLM
    latency percentiles merged from the LLM rows' histograms (a single row keeps its exact ones).
    """
    sessions, events = _kind(rollups, sessions=True), _kind(rollups, sessions=False)
    llm = events[events["kind"] == "llm"]
    timed = _sum(llm, "timed_count") > 0
    latency = merge_rollups(llm.assign(all=""), by=["all"]) if timed else None
    event_count, error_count = int(_sum(events, "count")), int(_sum(events, "error_count"))
    return OverviewKpis(
        session_count=int(_sum(sessions, "count")),
        failed_session_count=int(_sum(sessions, "error_count")),
        event_count=event_count,
        error_count=error_count,
        error_rate=error_count / event_count if event_count else 0.0,
        llm_call_count=int(_sum(llm, "count")),
        llm_p50_ms=float(latency["latency_p50_ms"].iloc[0]) if latency is not None else None,
        llm_p95_ms=float(latency["latency_p95_ms"].iloc[0]) if latency is not None else None,
        prompt_tokens=int(_sum(events, "prompt_tokens")),
        completion_tokens=int(_sum(events, "completion_tokens")),
        cost=_sum(events, "cost"),
    )


def _buckets(window: TimeWindow) -> pd.DatetimeIndex:
    first = pd.Timestamp(window.since).tz_convert("UTC").floor(window.freq)
    last = pd.Timestamp(window.until).tz_convert("UTC")
    return pd.date_range(first, last, freq=window.freq, name="bucket")


def _sum_by_bucket(frame: pd.DataFrame, column: str, window: TimeWindow) -> pd.Series:
    buckets = _buckets(window)
    if len(frame) == 0:
        return pd.Series(0, index=buckets, dtype="int64")
    sums = pd.to_numeric(frame[column]).groupby(frame["bucket"].dt.floor(window.freq)).sum()
    return sums.reindex(buckets, fill_value=0).astype("int64")


def activity_over_time(rollups: pd.DataFrame, *, window: TimeWindow) -> pd.DataFrame:
    """Sessions started, events and error events per bucket, zero-filled over the whole window.

    rollups: overview_rollups(). Returns columns bucket (UTC), sessions, events, errors, one row
    per bucket in time order.
    """
    sessions, events = _kind(rollups, sessions=True), _kind(rollups, sessions=False)
    frame = pd.DataFrame(
        {
            "sessions": _sum_by_bucket(sessions, "count", window),
            "events": _sum_by_bucket(events, "count", window),
            "errors": _sum_by_bucket(events, "error_count", window),
        }
    )
    return frame.rename_axis("bucket").reset_index()


def llm_latency_over_time(rollups: pd.DataFrame, *, window: TimeWindow) -> pd.DataFrame:
    """p50 and p95 LLM call latency per bucket; NaN where a bucket has no timed call.

    rollups: overview_rollups(). Returns columns bucket (UTC), calls (timed calls), p50_ms,
    p95_ms, one row per bucket in time order.
    """
    buckets = _buckets(window)
    llm = rollups[(rollups["kind"] == "llm") & (pd.to_numeric(rollups["timed_count"]) > 0)]
    llm = llm.assign(bucket=llm["bucket"].dt.floor(window.freq))
    merged = merge_rollups(llm, by=["bucket"]).set_index("bucket")
    frame = pd.DataFrame(
        {
            "calls": merged["timed_count"],
            "p50_ms": merged["latency_p50_ms"],
            "p95_ms": merged["latency_p95_ms"],
        }
    ).reindex(buckets)
    frame.index.name = "bucket"
    frame["calls"] = frame["calls"].fillna(0).astype("int64")
    return frame.rename_axis("bucket").reset_index()


def cost_by_model(rollups: pd.DataFrame) -> pd.DataFrame:
    """Calls, tokens and cost per model, most expensive first (ties by name).

    rollups: overview_rollups(). Only span rows that name a model or carry a cost count; a cost
    without a model is grouped under UNKNOWN_MODEL. Returns columns model, calls, prompt_tokens,
    completion_tokens, cost.
    """
    columns = ["model", "calls", "prompt_tokens", "completion_tokens", "cost"]
    events = _kind(rollups, sessions=False)
    costs = pd.to_numeric(events["cost"]) if len(events) else pd.Series(dtype="float64")
    relevant = events[(events["model"] != "") | (costs > 0)] if len(events) else events
    if len(relevant) == 0:
        return pd.DataFrame(columns=columns)
    frame = relevant.assign(model=relevant["model"].replace("", UNKNOWN_MODEL))
    grouped = frame.groupby("model").agg(
        calls=("count", "sum"),
        prompt_tokens=("prompt_tokens", "sum"),
        completion_tokens=("completion_tokens", "sum"),
        cost=("cost", "sum"),
    )
    grouped = grouped.reset_index().sort_values(["cost", "model"], ascending=[False, True])
    for column in ("calls", "prompt_tokens", "completion_tokens"):
        grouped[column] = grouped[column].astype("int64")
    grouped["cost"] = grouped["cost"].astype("float64")
    return grouped[columns].reset_index(drop=True)
