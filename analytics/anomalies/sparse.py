"""Sparse series: windows of several hours judged when single hours hold too little evidence.
Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from analytics.anomalies.baselines import (
    _HOUR_NS,
    ABSOLUTE_FLOORS,
    DEFAULT_WINDOW_EVIDENCE,
    HOUR,
    RATE_METRICS,
    WINDOW_EVIDENCE,
    DetectionSettings,
    _baseline,
    _episode_value,
    _History,
    _history,
    _Hour,
    _is_anomalous,
    _ns,
    _rate_score,
    _routine_at_this_time,
)
from analytics.anomalies.mix import _explained_by_mix


@dataclass(frozen=True)
class _Window:
    """Hours judged together because no single one of them held enough evidence."""

    start: pd.Timestamp
    end: pd.Timestamp
    baseline: float
    score: float
    is_seasonal: bool
    windowed: bool = True  # False: an hourly episode


def _episode_window(episode: list[_Hour]) -> _Window:
    """An hourly episode as a window, so it can merge with sparse windows and make one flag."""
    return _Window(
        episode[0].bucket,
        episode[-1].bucket + HOUR,
        episode[0].baseline,
        max(hour.score for hour in episode),
        episode[0].is_seasonal,
        windowed=False,
    )


# Sparse series: the window lengths tried, shortest first.
WINDOW_HOURS = (1, 3, 6, 12, 24)


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
