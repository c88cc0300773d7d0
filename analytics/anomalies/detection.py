"""detect_anomalies: each series of the hourly rollups judged hour by hour (and over wider windows
when sparse), each flag with its top contributing dimension. Pure.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from analytics.anomalies.baselines import (
    HOUR,
    SERIES,
    AnomalyFlag,
    DetectionSettings,
    Series,
    _episode_value,
    _episodes,
    _flagged_hours,
    _Hour,
    _hourly_values,
)
from analytics.anomalies.mix import MIX_COLUMNS, _explained_by_mix
from analytics.anomalies.sentence import explained_flag
from analytics.anomalies.sparse import _episode_window, _merge_windows, _sparse_windows, _Window
from analytics.trends import calls_above


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
        hourly = [_episode_window(e) for e in episodes]
        for window in _merge_windows(hourly + windows):
            flags.append(_flag(series, str(subject), window, subject_rows, all_rows, settings))
    return flags


def _flag(
    series: Series,
    subject: str,
    episode: list[_Hour] | _Window,
    subject_rows: pd.DataFrame,
    all_rows: pd.DataFrame,
    settings: DetectionSettings,
) -> AnomalyFlag:
    window = episode if isinstance(episode, _Window) else _episode_window(episode)
    start, end, baseline = window.start, window.end, window.baseline
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
    return explained_flag(
        series,
        subject,
        window,
        settings,
        observed=observed,
        sample_count=count,
        contribution=contribution or ("", None),
        calls=count,
        errors=int(in_window["error_count"].sum()),
    )


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
