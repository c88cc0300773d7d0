"""Baselines and the judgement of one hour: the series, their settings, robust baselines (median
and MAD of the previous days, by hour of week once there are two weeks of history) and the tests
that flag an hour. Pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

import numpy as np
import pandas as pd

from analytics.trends import grouped_histogram_quantiles

# A MAD times this estimates the standard deviation of normally distributed data.
MAD_TO_SIGMA = 1.4826


# Error-rate tests: a baseline rate is never taken as below this, and a tail probability below
# MIN_TAIL counts as MIN_TAIL (z about 8.2) so scores stay finite.
MIN_BASE_RATE = 0.005


MIN_TAIL = 1e-16


MAX_EXACT_CALLS = 2000


# A flagged hour must also exceed this quantile of the baseline days' hourly values.
CEILING_QUANTILE = 0.99


HOUR = pd.Timedelta(hours=1)


HOURS_PER_WEEK = 7 * 24


_HOUR_NS = 3600 * 10**9


_DAY_NS = 24 * _HOUR_NS


@dataclass(frozen=True)
class Series:
    """One metric of one kind of subject, and the rollup kinds it is computed from.

    analytics.queries.anomalies._subject_filter picks the same spans when it looks for example
    sessions."""

    subject_type: str  # agent, tool, model or project
    metric: str
    kinds: tuple[str, ...]


SERIES = (
    Series("tool", "latency_p95", ("tool",)),
    Series("tool", "error_rate", ("tool",)),
    Series("model", "latency_p95", ("llm",)),
    Series("model", "error_rate", ("llm",)),
    Series("model", "tokens_per_call", ("llm",)),
    Series("agent", "latency_p95", ("llm",)),
    Series("agent", "error_rate", ("action", "llm", "tool", "error")),
    Series("agent", "tokens_per_call", ("llm",)),
    Series("project", "cost_per_session", ("session",)),
)


# Inter-agent messages are judged from their own hourly frame (MESSAGE_HOUR_COLUMNS), by
# detect_message_anomalies() (anomalies/messages.py), with the same baselines.
MESSAGE_SERIES = (
    Series("edge", "message_failure_rate", ()),
    Series("project", "dead_letter_growth", ()),
    Series("agent", "dead_letter_growth", ()),
)


MESSAGE_METRICS = ("message_failure_rate", "dead_letter_growth")


# analytics.queries.message_hour_frame: one row per hour x sender x receiver x error type.
MESSAGE_HOUR_COLUMNS = [
    "bucket",
    "sender",
    "receiver",
    "error_type",
    "messages",
    "failed",
    "dead_lettered",
]


EDGE_ARROW = " \u2192 "  # an edge subject is "sender → receiver"


METRICS = {
    "latency_p95": "p95 latency",
    "error_rate": "error rate",
    "tokens_per_call": "tokens per call",
    "cost_per_session": "cost per session",
    "message_failure_rate": "message failure rate",
    "dead_letter_growth": "dead-letter growth",
    "score_mean": "mean score",  # a drop, not a rise: analytics/scores.py score_drops()
}


# Rates scored by a binomial test of failures among calls (messages), not by a spread.
RATE_METRICS = ("error_rate", "message_failure_rate")


# Below these the noise of small numbers would look like an anomaly: the spread's floor per metric.
ABSOLUTE_FLOORS = {
    "latency_p95": 50.0,
    "error_rate": 0.0,  # error rates are scored by a binomial test, not a spread
    "tokens_per_call": 20.0,
    "cost_per_session": 0.001,
    "message_failure_rate": 0.0,
    "dead_letter_growth": 1.0,  # new dead letters an hour: 5 above a quiet baseline is news
}


@dataclass(frozen=True)
class DetectionSettings:
    baseline_days: int = 7
    seasonal_min_days: int = 14  # hour-of-week baselines once a series has this much history
    seasonal_weeks: int = 4
    threshold: float = 4.5  # robust z-score (error rates: the z-score of a binomial tail)
    min_ratio: float = 2.0  # and at least this many times the baseline (rates: see below)
    min_rate_increase: float = 0.1  # error rate: at least 10 points above the baseline
    min_errors: int = 3  # error rate: and at least this many errors in the hour
    min_count: int = 5  # calls (sessions) in an hour for it to be judged…
    min_latency_count: int = 10  # …timed calls for a p95 (of fewer, p95 is about the maximum)
    min_baseline_count: int = 3  # calls in an hour for it to count in a baseline
    min_baseline_points: int = 12  # hours in a baseline
    min_seasonal_points: int = 4
    relative_floor: float = 0.1  # the MAD's floor as a share of the median


@dataclass(frozen=True)
class AnomalyFlag:
    subject_type: str
    subject: str
    metric: str
    window_start: datetime
    window_end: datetime
    observed: float
    baseline: float
    score: float
    sample_count: int
    is_seasonal: bool
    top_dimension: str  # "model=gpt-4o", or "" when no value stands out
    top_share: float | None
    explanation: str


@dataclass(frozen=True)
class _Hour:
    bucket: pd.Timestamp
    value: float
    baseline: float
    score: float
    is_seasonal: bool


def _hourly_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """subject, bucket, value, count, errors: the metric per subject and hour (errors only
    matter to error_rate, whose baseline pools errors and calls rather than hourly rates)."""
    keys = ["subject", "bucket"]
    sums = rows.groupby(keys)[
        [
            "count",
            "error_count",
            "timed_count",
            "prompt_tokens",
            "completion_tokens",
            "token_call_count",
            "cost",
        ]
    ].sum()
    count, errors = sums["count"], sums["error_count"]
    if metric == "latency_p95":
        p95 = grouped_histogram_quantiles(rows, by=keys, quantiles=(0.95,)).set_index(keys)["p95"]
        value, count = p95.reindex(sums.index), sums["timed_count"]
    elif metric == "error_rate":
        value = errors / count
    elif metric == "tokens_per_call":
        count = sums["token_call_count"]
        value = (sums["prompt_tokens"] + sums["completion_tokens"]) / count.where(count > 0)
    else:  # cost_per_session
        value = sums["cost"] / count
    frame = pd.DataFrame({"value": value, "count": count, "errors": errors})
    return frame.dropna(subset=["value"]).reset_index()


@dataclass(frozen=True)
class _History:
    """A series' baseline-worthy hours as sorted numpy arrays (times in ns), so that each judged
    hour finds its window with a binary search instead of masking a DataFrame."""

    times: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    errors: np.ndarray
    first_seen: int

    def window(self, start: int, end: int) -> slice:
        lo, hi = np.searchsorted(self.times, [start, end], side="left")
        return slice(int(lo), int(hi))


def _ns(moment: datetime | pd.Timestamp) -> int:
    return int(pd.Timestamp(moment).value)


def _history(values: pd.DataFrame, settings: DetectionSettings) -> _History:
    kept = values[values["count"] >= settings.min_baseline_count]
    return _History(
        # Nanoseconds whatever the index's unit (pandas keeps database times in microseconds).
        times=pd.DatetimeIndex(kept.index).as_unit("ns").asi8,
        values=kept["value"].to_numpy(dtype="float64"),
        counts=kept["count"].to_numpy(dtype="float64"),
        errors=kept["errors"].to_numpy(dtype="float64"),
        first_seen=_ns(values.index.min()),
    )


def _flagged_hours(
    values: pd.DataFrame, metric: str, since: datetime, until: datetime, settings: DetectionSettings
) -> list[_Hour]:
    least = settings.min_latency_count if metric == "latency_p95" else settings.min_count
    values = values.sort_index()
    judged = values[
        (values.index >= pd.Timestamp(since))
        & (values.index < pd.Timestamp(until))
        & (values["count"] >= least)
    ]
    history = _history(values, settings)
    hours = []
    for bucket, value, count, errors in zip(
        judged.index, judged["value"], judged["count"], judged["errors"], strict=True
    ):
        baseline = _baseline(history, _ns(bucket), metric, settings)
        if baseline is None:
            continue
        center, spread, ceiling, is_seasonal = baseline
        if metric in RATE_METRICS:
            if errors < settings.min_errors:
                continue
            score = _rate_score(int(errors), int(count), center)
        else:
            score = (value - center) / max(
                spread, settings.relative_floor * abs(center), ABSOLUTE_FLOORS[metric]
            )
        if (
            value > ceiling
            and _is_anomalous(float(value), center, score, metric, settings)
            and not _routine_at_this_time(
                history, _ns(bucket), _ns(bucket) + _HOUR_NS, metric, float(value), settings
            )
        ):
            hours.append(_Hour(bucket, float(value), center, score, is_seasonal))
    return hours


def _baseline(
    history: _History, bucket: int, metric: str, settings: DetectionSettings
) -> tuple[float, float, float, bool] | None:
    """The expected value, its spread, a ceiling and whether it is an hour-of-week baseline,
    from the hours before `bucket` (ns).

    The center is the median of the previous baseline_days, or, once the series has
    seasonal_min_days of history, of the same hour of the week (±1 h) over seasonal_weeks. The
    spread is the scaled MAD of the previous baseline_days relative to their median, times the
    center: a few same-hour points give a fair median but a poor MAD. Error rates pool the
    errors and calls of baseline_days instead (an hourly median of a 3 % rate is usually 0, and
    a few same-hour points hold too few calls to estimate a rate).

    The ceiling is the CEILING_QUANTILE of the previous baseline_days' hourly values (0 for error
    rates): an hour is never flagged for a level its subject reached routinely, which keeps a
    subject that serves two workloads (a fast and a slow one, in some hours only) quiet.
    """
    recent = history.window(bucket - _DAY_NS * settings.baseline_days, bucket)
    if recent.stop - recent.start < settings.min_baseline_points:
        return None
    if metric in RATE_METRICS:
        rate = float(history.errors[recent].sum() / history.counts[recent].sum())
        return rate, 0.0, 0.0, False
    points = history.values[recent]
    center, spread = _median_and_spread(points)
    ceiling = float(np.quantile(points, CEILING_QUANTILE))
    if bucket - history.first_seen < _DAY_NS * settings.seasonal_min_days:
        return center, spread, ceiling, False
    past = history.window(bucket - _DAY_NS * 7 * settings.seasonal_weeks, bucket)
    offsets = ((bucket - history.times[past]) // _HOUR_NS) % HOURS_PER_WEEK
    same_hour = history.values[past][np.isin(offsets, (0, 1, HOURS_PER_WEEK - 1))]
    if len(same_hour) < settings.min_seasonal_points:
        return center, spread, ceiling, False
    seasonal = float(np.median(same_hour))
    return seasonal, spread * seasonal / center if center > 0 else spread, ceiling, True


def _routine_at_this_time(
    history: _History, start: int, end: int, metric: str, value: float, settings: DetectionSettings
) -> bool:
    """Whether the same hours of the previous days (±1 h) reached this level: a planned nightly
    batch job is busy and slow every night, long before an hour-of-week baseline (two weeks)
    knows it. Levels: the median of those hours (at least two); rates: their pooled rate."""
    points: list[float] = []
    errors, calls = 0.0, 0.0
    for day in range(1, settings.baseline_days + 1):
        shift = day * _DAY_NS
        where = history.window(start - shift - _HOUR_NS, end - shift + _HOUR_NS)
        points.extend(history.values[where])
        errors += float(history.errors[where].sum())
        calls += float(history.counts[where].sum())
    if len(points) < 2:
        return False
    if metric in RATE_METRICS:
        return calls > 0 and value < 2 * errors / calls
    return value < settings.min_ratio * float(np.median(points))


def _median_and_spread(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    return median, MAD_TO_SIGMA * float(np.median(np.abs(values - median)))


def _rate_score(errors: int, calls: int, rate: float) -> float:
    """How surprising `errors` of `calls` is at the baseline `rate`, as the z-score with the same
    one-sided tail probability (exact binomial tail below MAX_EXACT_CALLS calls)."""
    p = min(max(rate, MIN_BASE_RATE), 1 - MIN_BASE_RATE)
    if errors <= calls * p:
        return (errors - calls * p) / math.sqrt(calls * p * (1 - p))
    tail = _binomial_tail(errors, calls, p)
    return NormalDist().inv_cdf(1 - max(tail, MIN_TAIL))


def _binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    if n > MAX_EXACT_CALLS:
        z = (k - 0.5 - n * p) / math.sqrt(n * p * (1 - p))
        return 1 - NormalDist().cdf(z)
    log_p, log_q = math.log(p), math.log1p(-p)
    terms = [
        math.lgamma(n + 1)
        - math.lgamma(i + 1)
        - math.lgamma(n - i + 1)
        + i * log_p
        + (n - i) * log_q
        for i in range(k, n + 1)
    ]
    peak = max(terms)
    return math.exp(peak) * sum(math.exp(t - peak) for t in terms)


def _is_anomalous(
    value: float, center: float, score: float, metric: str, settings: DetectionSettings
) -> bool:
    if score < settings.threshold:
        return False
    if metric in RATE_METRICS:
        return value - center >= settings.min_rate_increase and value >= 2 * center
    return value >= settings.min_ratio * center


def _episodes(hours: list[_Hour]) -> list[list[_Hour]]:
    """Runs of consecutive flagged hours."""
    runs: list[list[_Hour]] = []
    for hour in hours:
        if runs and hour.bucket - runs[-1][-1].bucket == HOUR:
            runs[-1].append(hour)
        else:
            runs.append([hour])
    return runs


# The evidence a window must hold to be judged (timed calls for a p95, calls for a rate, calls
# otherwise): sparse windows and the mix expectation ask the same.
WINDOW_EVIDENCE = {"latency_p95": 20, "error_rate": 30}
DEFAULT_WINDOW_EVIDENCE = 10


def _episode_value(rows: pd.DataFrame, metric: str) -> tuple[float, int]:
    """The metric over the whole episode (all its hours merged) and the calls it rests on."""
    if metric == "latency_p95":
        merged = grouped_histogram_quantiles(rows.assign(all=1), by=["all"], quantiles=(0.95,))
        return float(merged["p95"].iloc[0]), int(rows["timed_count"].sum())
    if metric == "error_rate":
        return float(rows["error_count"].sum() / rows["count"].sum()), int(rows["count"].sum())
    if metric == "tokens_per_call":
        calls = int(rows["token_call_count"].sum())
        tokens = float(rows["prompt_tokens"].sum() + rows["completion_tokens"].sum())
        return tokens / calls, calls
    return float(rows["cost"].sum() / rows["count"].sum()), int(rows["count"].sum())
