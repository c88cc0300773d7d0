"""Anomaly flags: hourly metrics of each agent, tool and model (and the project's cost per
session) compared with a robust baseline, median and MAD of the previous days, by hour of week
once there are two weeks of history. Each flag names its top contributing dimension and explains
itself in one sentence. Pure: hourly rollups in, frozen dataclasses out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

import numpy as np
import pandas as pd

from analytics.trends import (
    bin_middle_ms,
    calls_above,
    grouped_histogram_quantiles,
    merged_histogram,
)

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

    analytics.queries._subject_filter picks the same spans when it looks for example sessions."""

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
# detect_message_anomalies() below, with the same baselines.
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


def detect_anomalies(
    rollups: pd.DataFrame,
    *,
    since: datetime,
    until: datetime,
    settings: DetectionSettings | None = None,
) -> list[AnomalyFlag]:
    """Flags for the hours in [since, until), judged against the hours before them.

    rollups: hourly rows (analytics.trends.ROLLUP_COLUMNS) from at least seasonal_weeks before
    `since` (fewer only means weaker baselines) up to `until`. Consecutive flagged hours of one
    subject and metric become one flag whose window spans them, keyed by its first hour, so a
    rerun over overlapping windows gives the same flags. Only rises are flagged.
    """
    settings = settings or DetectionSettings()
    if len(rollups) == 0:
        return []
    rollups = rollups.assign(bucket=pd.to_datetime(rollups["bucket"], utc=True))
    flags: list[AnomalyFlag] = []
    for series in SERIES:
        rows = rollups[rollups["kind"].isin(series.kinds)]
        if len(rows):
            flags.extend(_detect_series(rows, rollups, series, since, until, settings))
    return sorted(flags, key=lambda f: (f.window_start, f.subject_type, f.subject, f.metric))


def agents_by_name(rollups: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The rollups with each agent id replaced by its name (ids without one stay): an agent is
    judged by name, since OTLP and agentops give each session's instance its own id and a
    series per instance would hold a handful of calls."""
    if not names or len(rollups) == 0:
        return rollups
    return rollups.assign(agent=rollups["agent"].map(names).fillna(rollups["agent"]))


def _subject_column(series: Series) -> str | None:
    return None if series.subject_type == "project" else series.subject_type


def _detect_series(
    rows: pd.DataFrame,
    all_rows: pd.DataFrame,
    series: Series,
    since: datetime,
    until: datetime,
    settings: DetectionSettings,
) -> list[AnomalyFlag]:
    column = _subject_column(series)
    rows = rows.assign(subject=rows[column] if column else "")
    rows = rows[(rows["subject"] != "") | (column is None)]
    hourly = _hourly_values(rows, series.metric)
    mix = MIX_COLUMNS.get(series.subject_type)
    flags = []
    for subject, values in hourly.groupby("subject", sort=True):
        indexed = values.set_index("bucket").sort_index()
        subject_rows = rows[rows["subject"] == subject].sort_values("bucket", kind="stable")
        hours = [
            hour
            for hour in _flagged_hours(indexed, series.metric, since, until, settings)
            if not _explained_by_mix(
                subject_rows, hour.bucket, hour.bucket + HOUR, series.metric, mix, settings
            )
        ]
        episodes = _episodes(hours)
        windows = _sparse_windows(indexed, subject_rows, series.metric, mix, since, until, settings)
        if not windows:
            for episode in episodes:
                flags.append(_flag(series, str(subject), episode, subject_rows, all_rows, settings))
            continue
        # One incident, one flag: hourly episodes and sparse windows that overlap merge.
        hourly = [
            _Window(
                e[0].bucket,
                e[-1].bucket + HOUR,
                e[0].baseline,
                max(h.score for h in e),
                e[0].is_seasonal,
                windowed=False,
            )
            for e in episodes
        ]
        for window in _merge_windows(hourly + windows):
            flags.append(_flag(series, str(subject), window, subject_rows, all_rows, settings))
    return flags


# A model's or tool's calls come from several agents: its pooled level moves when their mix
# does, with no agent behaving differently (a nightly batch job's slow calls are most of a quiet
# weekend hour's). Such a subject is also judged against the mix its agents' own calls give.
MIX_COLUMNS = {"model": "agent", "tool": "agent"}
MIX_QUANTILE = 0.95


def _explained_by_mix(
    rows: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    metric: str,
    column: str | None,
    settings: DetectionSettings,
) -> bool:
    """Whether the hours [start, end) of a subject pooled over `column` (MIX_COLUMNS) stay below
    min_ratio times what each agent's own calls of the previous baseline_days give in the
    window's mix: each agent's baseline (its latency histogram, tokens per call or error rate)
    weighted by its calls in the window. An agent with fewer baseline calls than a judged window
    needs takes the subject's baseline of all agents. A slowdown of the model (or of one agent's
    calls of it) stays far above that; an agent as slow as it always is, now a larger share of
    the calls, does not. Judged per hour and per sparse window, before they merge."""
    if column is None or metric not in ("latency_p95", "tokens_per_call", "error_rate"):
        return False
    window = rows[(rows["bucket"] >= start) & (rows["bucket"] < end)]
    before = rows[(rows["bucket"] >= start - pd.Timedelta(days=settings.baseline_days))]
    before = before[before["bucket"] < start]
    if len(window) == 0 or len(before) == 0:
        return False
    value, _ = _episode_value(window, metric)
    expected = _mix_expectation(window, before, metric, column)
    if expected is None:
        return False
    if metric in RATE_METRICS:
        return value < 2 * expected or value - expected < settings.min_rate_increase
    return value < settings.min_ratio * expected


def _mix_expectation(
    window: pd.DataFrame, before: pd.DataFrame, metric: str, column: str
) -> float | None:
    """The value the window would have if each `column` value (agent) behaved as in `before`."""
    evidence = {"latency_p95": "timed_count", "tokens_per_call": "token_call_count"}
    weight_column = evidence.get(metric, "count")
    need = WINDOW_EVIDENCE.get(metric, DEFAULT_WINDOW_EVIDENCE)
    weights = window.groupby(column)[weight_column].sum()
    weights = weights[weights > 0]
    if len(weights) == 0:
        return None
    pooled = _mix_baseline(before, metric)
    if metric == "latency_p95":
        expected: dict[int, float] = {}
        for name, calls in weights.items():
            own = before[before[column] == name]
            shape = _mix_baseline(own, metric) if own[weight_column].sum() >= need else pooled
            for index, share in shape.items():  # type: ignore[union-attr]
                expected[index] = expected.get(index, 0.0) + float(calls) * share
        return _histogram_quantile_of(expected, MIX_QUANTILE)
    total = 0.0
    for name, calls in weights.items():
        own = before[before[column] == name]
        level = _mix_baseline(own, metric) if own[weight_column].sum() >= need else pooled
        total += float(calls) * level  # type: ignore[operator]
    return total / float(weights.sum())


def _mix_baseline(rows: pd.DataFrame, metric: str) -> dict[int, float] | float:
    """Rows' calls as one baseline: latency, the share of calls per histogram bin; tokens per
    call and error rates, their pooled value."""
    if metric == "latency_p95":
        merged = merged_histogram(list(rows["latency_histogram"]))
        total = float(sum(merged.values())) or 1.0
        return {index: calls / total for index, calls in merged.items()}
    return _episode_value(rows, metric)[0] if rows["count"].sum() else 0.0


def _histogram_quantile_of(histogram: dict[int, float], q: float) -> float | None:
    """The q-quantile (a bin middle) of a histogram with fractional counts."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    seen = 0.0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= q * total:
            return bin_middle_ms(index)
    return bin_middle_ms(max(histogram))


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
    points, errors, calls = [], 0.0, 0.0
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


@dataclass(frozen=True)
class _Window:
    """Hours judged together because no single one of them held enough evidence."""

    start: pd.Timestamp
    end: pd.Timestamp
    baseline: float
    score: float
    is_seasonal: bool
    windowed: bool = True  # False: an hourly episode


# Sparse series: the window lengths tried, shortest first, and the evidence a window must hold
# to be judged (timed calls for a p95, calls for a rate, calls otherwise).
WINDOW_HOURS = (1, 3, 6, 12, 24)
WINDOW_EVIDENCE = {"latency_p95": 20, "error_rate": 30}
DEFAULT_WINDOW_EVIDENCE = 10


def _sparse_windows(
    values: pd.DataFrame,
    rows: pd.DataFrame,
    metric: str,
    mix: str | None,
    since: datetime,
    until: datetime,
    settings: DetectionSettings,
) -> list[_Window]:
    """Flags of a subject too sparse to judge hour by hour (a tool called six times an hour).

    For each hour with calls, the window ending with it is the shortest of WINDOW_HOURS that
    holds WINDOW_EVIDENCE; a subject with that much in one hour is the hourly pass's (skipped).
    The window's merged value is judged against the baseline before its start. Overlapping
    flagged windows merge; hours at either end that are not anomalous by themselves are trimmed.
    Hours up to the longest window before `since` are judged too, so a rerun rebuilds a window
    that began earlier; only windows reaching into [since, until) are returned."""
    need = WINDOW_EVIDENCE.get(metric, DEFAULT_WINDOW_EVIDENCE)
    history = _history(values, settings)
    times = pd.DatetimeIndex(values.index).as_unit("ns").asi8
    cumulative = np.concatenate([[0.0], np.cumsum(values["count"].to_numpy(dtype="float64"))])
    row_times = pd.DatetimeIndex(rows["bucket"]).as_unit("ns").asi8
    lo_ns = _ns(since) - max(WINDOW_HOURS) * _HOUR_NS
    until_ns = _ns(until)
    hits: list[_Window] = []
    for i, end_hour in enumerate(times):
        if end_hour < lo_ns or end_hour >= until_ns:
            continue
        end = end_hour + _HOUR_NS
        for length in WINDOW_HOURS:
            start = end - length * _HOUR_NS
            first = int(np.searchsorted(times, start, side="left"))
            if cumulative[i + 1] - cumulative[first] >= need:
                break
        else:
            continue
        if length == 1:
            continue  # enough in one hour: judged hour by hour
        hit = _judge_window(
            history, values.iloc[first : i + 1], rows, row_times, start, end, metric, settings
        )
        if hit is not None and _explained_by_mix(rows, hit.start, hit.end, metric, mix, settings):
            hit = None
        if hit is not None:
            hits.append(hit)
    windows = []
    for window in _merge_windows(hits):
        window = _trim(window, values, metric, settings.min_ratio)
        if window.end > pd.Timestamp(since):
            windows.append(window)
    return windows


def _judge_window(
    history: _History,
    hours: pd.DataFrame,
    rows: pd.DataFrame,
    row_times: np.ndarray,
    start: int,
    end: int,
    metric: str,
    settings: DetectionSettings,
) -> _Window | None:
    baseline = _baseline(history, start, metric, settings)
    if baseline is None:
        return None
    center, spread, ceiling, is_seasonal = baseline
    if metric in RATE_METRICS:
        errors, calls = float(hours["errors"].sum()), float(hours["count"].sum())
        if errors < settings.min_errors or errors / calls < 2 * center:
            return None
    else:
        # A merged p95 (or mean) is at most its hours' largest: most windows end here, cheaply.
        top = float(hours["value"].max())
        if top <= ceiling or top < settings.min_ratio * center:
            return None
    lo, hi = np.searchsorted(row_times, [start, end], side="left")
    window_rows = rows.iloc[int(lo) : int(hi)]
    value, count = _episode_value(window_rows, metric)
    if metric in RATE_METRICS:
        errors = int(window_rows["error_count"].sum())
        if errors < settings.min_errors:
            return None
        score = _rate_score(errors, count, center)
    else:
        score = (value - center) / max(
            spread, settings.relative_floor * abs(center), ABSOLUTE_FLOORS[metric]
        )
    if (
        value > ceiling
        and _is_anomalous(value, center, score, metric, settings)
        and not _routine_at_this_time(history, start, end, metric, value, settings)
    ):
        return _Window(
            pd.Timestamp(start, tz="UTC"), pd.Timestamp(end, tz="UTC"), center, score, is_seasonal
        )
    return None


def _merge_windows(hits: list[_Window]) -> list[_Window]:
    merged: list[_Window] = []
    for hit in sorted(hits, key=lambda w: w.start):
        if merged and hit.start <= merged[-1].end:
            last = merged[-1]
            merged[-1] = _Window(
                last.start,
                max(last.end, hit.end),
                last.baseline,
                max(last.score, hit.score),
                last.is_seasonal,
                last.windowed or hit.windowed,
            )
        else:
            merged.append(hit)
    return merged


def _trim(window: _Window, values: pd.DataFrame, metric: str, min_ratio: float) -> _Window:
    """Drop hours at either end of a window whose own value is not twice the baseline (a window
    that ends with an incident's first hour starts hours before it)."""
    inside = values[(values.index >= window.start) & (values.index < window.end)]
    if metric in RATE_METRICS:
        rate = inside["errors"] / inside["count"]
        bad = (inside["errors"] >= 2) & (rate >= 2 * window.baseline)  # one error is noise
    else:
        bad = inside["value"] >= min_ratio * window.baseline
    bad_hours = inside.index[bad.to_numpy()]
    if len(bad_hours) == 0:
        return window
    return _Window(
        max(window.start, bad_hours.min()),
        min(window.end, bad_hours.max() + HOUR),
        window.baseline,
        window.score,
        window.is_seasonal,
    )


def _flag(
    series: Series,
    subject: str,
    episode: list[_Hour] | _Window,
    subject_rows: pd.DataFrame,
    all_rows: pd.DataFrame,
    settings: DetectionSettings,
) -> AnomalyFlag:
    if isinstance(episode, _Window):
        start, end, baseline = episode.start, episode.end, episode.baseline
        score, is_seasonal = episode.score, episode.is_seasonal
        window_hours = int((end - start) / HOUR) if episode.windowed else 0
    else:
        start, end, baseline = episode[0].bucket, episode[-1].bucket + HOUR, episode[0].baseline
        score, is_seasonal = max(hour.score for hour in episode), episode[0].is_seasonal
        window_hours = 0
    in_window = subject_rows[(subject_rows["bucket"] >= start) & (subject_rows["bucket"] < end)]
    observed, count = _episode_value(in_window, series.metric)
    if series.metric == "cost_per_session":
        # Session rows carry no dimensions: the LLM calls of the window say where the cost went.
        window_llm = all_rows[
            (all_rows["bucket"] >= start) & (all_rows["bucket"] < end) & (all_rows["kind"] == "llm")
        ]
        contribution = _top_contribution(window_llm, series.metric, None, baseline)
    else:
        contribution = _top_contribution(
            in_window, series.metric, _subject_column(series), baseline
        )
    dimension, share = contribution or ("", None)
    return AnomalyFlag(
        subject_type=series.subject_type,
        subject=subject,
        metric=series.metric,
        window_start=start.to_pydatetime(),
        window_end=end.to_pydatetime(),
        observed=observed,
        baseline=baseline,
        score=round(score, 2),
        sample_count=count,
        is_seasonal=is_seasonal,
        top_dimension=dimension,
        top_share=share,
        explanation=explain(
            series.subject_type,
            subject,
            series.metric,
            observed=observed,
            baseline=baseline,
            baseline_days=settings.seasonal_weeks * 7 if is_seasonal else settings.baseline_days,
            is_seasonal=is_seasonal,
            top_dimension=dimension,
            top_share=share,
            window_hours=window_hours,
            calls=count,
            errors=int(in_window["error_count"].sum()),
        ),
    )


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


def _bad_weight(rows: pd.DataFrame, metric: str, baseline: float) -> pd.Series:
    """How much each rollup row contributes to the anomaly: slow calls, errors, tokens, cost."""
    if metric == "latency_p95":
        return rows["latency_histogram"].map(lambda h: calls_above(h, baseline)).astype("float64")
    if metric == "error_rate":
        return rows["error_count"].astype("float64")
    if metric == "tokens_per_call":
        return (rows["prompt_tokens"] + rows["completion_tokens"]).astype("float64")
    return rows["cost"].astype("float64")


def _top_contribution(
    rows: pd.DataFrame, metric: str, own_column: str | None, baseline: float
) -> tuple[str, float] | None:
    """The dimension value (other than the subject's own) behind most of the anomaly: at least
    half of it, and the most over-represented relative to its share of all calls."""
    weights = _bad_weight(rows, metric, baseline)
    total = float(weights.sum())
    if total <= 0:
        return None
    best: tuple[float, float, str, str] | None = None
    for column in ("model", "agent", "tool"):
        if column == own_column:
            continue
        named = rows[column] != ""
        if not named.any():
            continue
        bad = weights[named].groupby(rows.loc[named, column]).sum() / total
        calls = rows.loc[named, "count"].groupby(rows.loc[named, column]).sum()
        calls = calls / max(float(rows["count"].sum()), 1.0)
        value = str(bad.idxmax())
        share = float(bad.max())
        lift = share / max(float(calls.get(value, 0.0)), 1e-9)
        if share >= 0.5 and (best is None or (lift, share) > (best[0], best[1])):
            best = (lift, share, column, value)
    if best is None:
        return None
    return f"{best[2]}={best[3]}", round(best[1], 3)


# --- The sentence --------------------------------------------------------------------------

TIMES = "\u00d7"  # the multiplication sign, as in "3.8x its baseline"
CONTRIBUTION_WORDS = {
    "latency_p95": "of the slow calls",
    "error_rate": "of the errors",
    "tokens_per_call": "of the tokens",
    "cost_per_session": "of the LLM cost",
    "message_failure_rate": "of the failed messages",
    "dead_letter_growth": "of the new dead letters",
}
DIMENSION_VERBS = {
    "model": "used model",
    "agent": "came from agent",
    "tool": "were in tool",
    "receiver": "were sent to agent",
    "error_type": "had error type",
}


def format_value(metric: str, value: float) -> str:
    """A metric value as people read it: 4.1 s, 850 ms, 12 %, 1,234 tokens, $0.42."""
    if metric == "latency_p95":
        return f"{value / 1000:.1f} s" if value >= 1000 else f"{value:,.0f} ms"
    if metric in RATE_METRICS:
        return f"{value * 100:.0f} %" if value >= 0.1 or value == 0 else f"{value * 100:.1f} %"
    if metric == "tokens_per_call":
        return f"{value:,.0f} tokens"
    if metric == "dead_letter_growth":
        return f"{value:,.0f} new dead letters an hour"
    return f"${value:,.2f}" if value >= 1 else f"${value:,.4f}"


def explain(
    subject_type: str,
    subject: str,
    metric: str,
    *,
    observed: float,
    baseline: float,
    baseline_days: int,
    is_seasonal: bool,
    top_dimension: str,
    top_share: float | None,
    window_hours: int = 0,
    calls: int = 0,
    errors: int = 0,
) -> str:
    """One sentence: "p95 latency of tool search was 4.1 s, 3.8x its 7-day baseline of 1.1 s;
    80 % of the slow calls used model gpt-4o" (with a multiplication sign for the x).

    A flag judged over a window of several hours (window_hours) also states its evidence:
    "error rate of tool search was 53 %: 31 of 58 calls failed in 8 h against 1.4 % over 7
    days", "p95 latency of tool search was 6.2 s over 36 calls in 6 h, 6.0x its ..."."""
    what = METRICS[metric]
    if subject_type == "edge":
        sender, _, receiver = subject.partition(EDGE_ARROW)
        what += f" from {sender} to {receiver}"
    elif subject_type != "project":
        what += f" of {subject_type} {subject}"
    kind = f"{baseline_days}-day hour-of-week" if is_seasonal else f"{baseline_days}-day"
    was = f"{what} was {format_value(metric, observed)}"
    base = format_value(metric, baseline)
    if window_hours and metric in RATE_METRICS:
        sentence = (
            f"{was}: {errors:,} of {calls:,} calls failed in {window_hours} h "
            f"against {base} over {baseline_days} days"
        )
    elif window_hours:
        was += f" over {calls:,} calls in {window_hours} h"
        if baseline > 0:
            sentence = f"{was}, {observed / baseline:.1f}{TIMES} its {kind} baseline of {base}"
        else:
            sentence = f"{was}, up from a {kind} baseline of {base}"
    elif baseline > 0:
        sentence = f"{was}, {observed / baseline:.1f}{TIMES} its {kind} baseline of {base}"
    else:
        sentence = f"{was}, up from a {kind} baseline of {base}"
    if top_dimension and top_share is not None:
        column, _, value = top_dimension.partition("=")
        words = f"{CONTRIBUTION_WORDS[metric]} {DIMENSION_VERBS[column]} {value}"
        sentence += f"; {top_share * 100:.0f} % {words}"
    return sentence


# --- Inter-agent messages ------------------------------------------------------------------


def detect_message_anomalies(
    hours: pd.DataFrame,
    *,
    since: datetime,
    until: datetime,
    settings: DetectionSettings | None = None,
) -> list[AnomalyFlag]:
    """Flags for the message failure rate of each sender→receiver edge and the dead-letter
    growth (new dead letters an hour) of the project and of each sending agent, in the hours
    [since, until), with the baselines, episodes and sentences of detect_anomalies().

    hours: MESSAGE_HOUR_COLUMNS. `messages` and `failed` count messages that started in the
    hour and how many of them ended failed, dead-lettered or expired; `dead_lettered` counts
    messages dead-lettered in the hour. A message counts once per receiver, as on the agent
    graph. A failure rate is judged like an error rate (a binomial test against the pooled
    rate of the baseline days); dead letters like a level (median and MAD of the hours with
    traffic, so the quiet hours' zeros are the baseline).
    """
    settings = settings or DetectionSettings()
    if len(hours) == 0:
        return []
    hours = hours.assign(
        bucket=pd.to_datetime(hours["bucket"], utc=True),
        sender=hours["sender"].fillna("").replace("", "?"),
        receiver=hours["receiver"].fillna("").replace("", "?"),
        error_type=hours["error_type"].fillna(""),
    )
    flags: list[AnomalyFlag] = []
    for series in MESSAGE_SERIES:
        rows = hours.assign(subject=_message_subject(hours, series.subject_type))
        values = _message_values(rows, series.metric)
        for subject, subject_values in values.groupby("subject", sort=True):
            found = _flagged_hours(
                subject_values.set_index("bucket"), series.metric, since, until, settings
            )
            for episode in _episodes(found):
                subject_rows = rows[rows["subject"] == subject]
                flags.append(_message_flag(series, str(subject), episode, subject_rows, settings))
    return sorted(flags, key=lambda f: (f.window_start, f.subject_type, f.subject, f.metric))


def _message_subject(hours: pd.DataFrame, subject_type: str) -> pd.Series | str:
    if subject_type == "edge":
        return hours["sender"] + EDGE_ARROW + hours["receiver"]
    return hours["sender"] if subject_type == "agent" else ""


def _message_values(rows: pd.DataFrame, metric: str) -> pd.DataFrame:
    """subject, bucket, value, count, errors per subject and hour (see _hourly_values)."""
    sums = rows.groupby(["subject", "bucket"])[["messages", "failed", "dead_lettered"]].sum()
    if metric == "message_failure_rate":
        sums = sums[sums["messages"] > 0]
        frame = pd.DataFrame(
            {
                "value": (sums["failed"] / sums["messages"]).astype("float64"),
                "count": sums["messages"],
                "errors": sums["failed"],
            }
        )
    else:  # dead_letter_growth; an hour's traffic is what makes it a judged or baseline hour
        frame = pd.DataFrame(
            {
                "value": sums["dead_lettered"].astype("float64"),
                "count": sums["messages"] + sums["dead_lettered"],
                "errors": sums["dead_lettered"],
            }
        )
    return frame.reset_index()


# Where a message anomaly may come from, by subject type: the rollup column and its dimension.
_MESSAGE_DIMENSIONS = {
    "edge": (("error_type", "error_type"),),
    "agent": (("receiver", "receiver"), ("error_type", "error_type")),
    "project": (("sender", "agent"), ("receiver", "receiver"), ("error_type", "error_type")),
}


def _message_flag(
    series: Series,
    subject: str,
    episode: list[_Hour],
    subject_rows: pd.DataFrame,
    settings: DetectionSettings,
) -> AnomalyFlag:
    start, end = episode[0].bucket, episode[-1].bucket + HOUR
    window = subject_rows[(subject_rows["bucket"] >= start) & (subject_rows["bucket"] < end)]
    if series.metric == "message_failure_rate":
        count = int(window["messages"].sum())
        observed = float(window["failed"].sum()) / max(count, 1)
        weights = window["failed"].astype("float64")
    else:
        count = int(window["dead_lettered"].sum())
        observed = count / len(episode)
        weights = window["dead_lettered"].astype("float64")
    dimension, share = _top_message_dimension(window, weights, series.subject_type)
    baseline = episode[0].baseline
    is_seasonal = episode[0].is_seasonal
    return AnomalyFlag(
        subject_type=series.subject_type,
        subject=subject,
        metric=series.metric,
        window_start=start.to_pydatetime(),
        window_end=end.to_pydatetime(),
        observed=observed,
        baseline=baseline,
        score=round(max(hour.score for hour in episode), 2),
        sample_count=count,
        is_seasonal=is_seasonal,
        top_dimension=dimension,
        top_share=share,
        explanation=explain(
            series.subject_type,
            subject,
            series.metric,
            observed=observed,
            baseline=baseline,
            baseline_days=settings.seasonal_weeks * 7 if is_seasonal else settings.baseline_days,
            is_seasonal=is_seasonal,
            top_dimension=dimension,
            top_share=share,
        ),
    )


def _top_message_dimension(
    rows: pd.DataFrame, weights: pd.Series, subject_type: str
) -> tuple[str, float | None]:
    """The sender, receiver or error type behind at least half of the failures (dead letters),
    the one with the largest share; ("", None) when none is. A sender or receiver counts only
    when the window has more than one."""
    total = float(weights.sum())
    best: tuple[float, str] | None = None
    if total <= 0:
        return "", None
    for column, dimension in _MESSAGE_DIMENSIONS[subject_type]:
        named = rows[column] != ""
        if not named.any() or (column != "error_type" and rows[column].nunique() < 2):
            continue  # an agent that only sends to one receiver: naming it says nothing
        by_value = weights[named].groupby(rows.loc[named, column]).sum() / total
        share = float(by_value.max())
        if share >= 0.5 and (best is None or share > best[0]):
            best = (share, f"{dimension}={by_value.idxmax()}")
    return ("", None) if best is None else (best[1], round(best[0], 3))
