"""The overview page's numbers: time windows, KPI totals and per-bucket series. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

# Range key -> (length, bucket size). Buckets keep every chart at roughly 24-60 points.
RANGES: dict[str, tuple[timedelta, str]] = {
    "24h": (timedelta(hours=24), "1h"),
    "7d": (timedelta(days=7), "6h"),
    "14d": (timedelta(days=14), "12h"),
    "30d": (timedelta(days=30), "1D"),
    "90d": (timedelta(days=90), "1D"),
}
DEFAULT_RANGE = "24h"
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


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True)


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _error_mask(events: pd.DataFrame) -> pd.Series:
    return (events["kind"] == "error") | (events["status"] == "error")


def overview_kpis(sessions: pd.DataFrame, events: pd.DataFrame) -> OverviewKpis:
    """Totals for the KPI tiles.

    sessions: one row per session started in the window, with column `end_state`.
    events: one row per span started in the window, with columns `kind`, `status`, `duration_ms`,
    `prompt_tokens`, `completion_tokens`, `cost` (numbers may be missing).
    """
    error_count = int(_error_mask(events).sum()) if len(events) else 0
    llm = events[events["kind"] == "llm"] if len(events) else events
    latencies = _numbers(llm, "duration_ms").dropna() if len(llm) else pd.Series(dtype="float64")
    has_latency = len(latencies) > 0
    return OverviewKpis(
        session_count=len(sessions),
        failed_session_count=int((sessions["end_state"] == "fail").sum()) if len(sessions) else 0,
        event_count=len(events),
        error_count=error_count,
        error_rate=error_count / len(events) if len(events) else 0.0,
        llm_call_count=len(llm),
        llm_p50_ms=float(latencies.quantile(0.5)) if has_latency else None,
        llm_p95_ms=float(latencies.quantile(0.95)) if has_latency else None,
        prompt_tokens=int(_numbers(events, "prompt_tokens").fillna(0).sum()) if len(events) else 0,
        completion_tokens=(
            int(_numbers(events, "completion_tokens").fillna(0).sum()) if len(events) else 0
        ),
        cost=float(_numbers(events, "cost").fillna(0).sum()) if len(events) else 0.0,
    )


def _buckets(window: TimeWindow) -> pd.DatetimeIndex:
    first = pd.Timestamp(window.since).tz_convert("UTC").floor(window.freq)
    last = pd.Timestamp(window.until).tz_convert("UTC")
    return pd.date_range(first, last, freq=window.freq, name="bucket")


def _count_by_bucket(times: pd.Series, window: TimeWindow) -> pd.Series:
    buckets = _buckets(window)
    if len(times) == 0:
        return pd.Series(0, index=buckets, dtype="int64")
    counts = _utc(times).dt.floor(window.freq).value_counts()
    return counts.reindex(buckets, fill_value=0).astype("int64")


def activity_over_time(
    sessions: pd.DataFrame, events: pd.DataFrame, *, window: TimeWindow
) -> pd.DataFrame:
    """Sessions started, events and error events per bucket, zero-filled over the whole window.

    sessions needs `started_at`; events needs `started_at`, `kind` and `status`.
    Returns columns bucket (UTC), sessions, events, errors, one row per bucket in time order.
    """
    errors = events[_error_mask(events)] if len(events) else events
    frame = pd.DataFrame(
        {
            "sessions": _count_by_bucket(sessions["started_at"], window),
            "events": _count_by_bucket(events["started_at"], window),
            "errors": _count_by_bucket(errors["started_at"], window),
        }
    )
    return frame.rename_axis("bucket").reset_index()


def llm_latency_over_time(events: pd.DataFrame, *, window: TimeWindow) -> pd.DataFrame:
    """p50 and p95 LLM call latency per bucket; NaN where a bucket has no timed call.

    events needs `started_at`, `kind` and `duration_ms`.
    Returns columns bucket (UTC), calls, p50_ms, p95_ms, one row per bucket in time order.
    """
    buckets = _buckets(window)
    llm = events[events["kind"] == "llm"] if len(events) else events
    timed = pd.DataFrame(
        {
            "bucket": _utc(llm["started_at"]).dt.floor(window.freq) if len(llm) else [],
            "duration_ms": _numbers(llm, "duration_ms") if len(llm) else [],
        }
    ).dropna()
    grouped = timed.groupby("bucket")["duration_ms"]
    frame = pd.DataFrame(
        {
            "calls": grouped.size(),
            "p50_ms": grouped.quantile(0.5),
            "p95_ms": grouped.quantile(0.95),
        }
    ).reindex(buckets)
    frame["calls"] = frame["calls"].fillna(0).astype("int64")
    return frame.rename_axis("bucket").reset_index()


def cost_by_model(events: pd.DataFrame) -> pd.DataFrame:
    """Calls, tokens and cost per model, most expensive first (ties by name).

    events needs `model`, `prompt_tokens`, `completion_tokens` and `cost`. Only events that name a
    model or carry a cost count; a cost without a model is grouped under UNKNOWN_MODEL.
    Returns columns model, calls, prompt_tokens, completion_tokens, cost.
    """
    columns = ["model", "calls", "prompt_tokens", "completion_tokens", "cost"]
    if len(events) == 0:
        return pd.DataFrame(columns=columns)
    costs = _numbers(events, "cost").fillna(0)
    models = events["model"].fillna("").astype(str)
    relevant = (models != "") | (costs > 0)
    frame = pd.DataFrame(
        {
            "model": models[relevant].replace("", UNKNOWN_MODEL),
            "prompt_tokens": _numbers(events, "prompt_tokens").fillna(0)[relevant],
            "completion_tokens": _numbers(events, "completion_tokens").fillna(0)[relevant],
            "cost": costs[relevant],
        }
    )
    grouped = frame.groupby("model").agg(
        calls=("cost", "size"),
        prompt_tokens=("prompt_tokens", "sum"),
        completion_tokens=("completion_tokens", "sum"),
        cost=("cost", "sum"),
    )
    grouped = grouped.reset_index().sort_values(["cost", "model"], ascending=[False, True])
    for column in ("calls", "prompt_tokens", "completion_tokens"):
        grouped[column] = grouped[column].astype("int64")
    return grouped[columns].reset_index(drop=True)
