"""Cohort comparison and forecasts. Pure.

Cohorts: the same per-session metrics for two groups of sessions (a tag, an agent version or a
config value, or before and after a change), with the difference of means and a permutation
test of it (scipy is not a dependency; numpy shuffles are enough at our sizes). Forecasts:
daily volume and cost for the next 7 or 30 days by seasonal naive (the same weekday last week)
with an interval from the quantiles of its past errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

COHORT_SESSION_COLUMNS = [
    "id",
    "external_id",
    "started_at",
    "tags",
    "metadata",
    "config",
    "end_state",
    "cost",
    "duration_ms",
    "event_count",
    "error_count",
    "prompt_tokens",
    "completion_tokens",
]
COHORT_METRICS = {
    "cost": "cost per session (USD)",
    "duration_ms": "duration (ms)",
    "event_count": "steps per session",
    "error_count": "errors per session",
    "tokens": "tokens per session",
    "failed": "failure rate",
}
SPLITS = ("tag", "metadata", "config", "before_after")


@dataclass(frozen=True)
class CohortDifference:
    metric: str
    label: str
    a_mean: float | None
    b_mean: float | None
    a_count: int
    b_count: int
    difference: float | None  # b minus a
    relative: float | None  # difference / a_mean
    p_value: float | None
    is_significant: bool


def _value_of(container: Any, key: str) -> str | None:
    if isinstance(container, dict) and key in container and container[key] is not None:
        return str(container[key])
    return None


def cohort_labels(
    sessions: pd.DataFrame,
    *,
    split: str,
    key: str = "",
    a: str = "",
    b: str = "",
    change_at: datetime | None = None,
) -> pd.Series:
    """ "a", "b" or None per session.

    split "tag": sessions tagged `a` vs tagged `b` (both tags: neither). "metadata"/"config":
    the value of `key` in the session's metadata/config equals `a` or `b` (agent versions
    usually live there). "before_after": started before `change_at` (a) or from it (b).
    """
    if split == "before_after":
        if change_at is None:
            raise ValueError("before_after needs change_at")
        started = pd.to_datetime(sessions["started_at"], utc=True)
        return pd.Series(
            np.where(started < pd.Timestamp(change_at), "a", "b"), index=sessions.index
        )
    if split == "tag":
        tags = sessions["tags"].map(lambda t: set(t or []))
        in_a, in_b = tags.map(lambda t: a in t), tags.map(lambda t: b in t)
    elif split in ("metadata", "config"):
        values = sessions[split].map(lambda c: _value_of(c, key))
        in_a, in_b = values == a, values == b
    else:
        raise ValueError(f"unknown split {split!r}; one of {', '.join(SPLITS)}")
    values = [
        "a" if x and not y else "b" if y and not x else None
        for x, y in zip(in_a, in_b, strict=True)
    ]
    return pd.Series(values, index=sessions.index, dtype=object)


def session_metrics(sessions: pd.DataFrame) -> pd.DataFrame:
    """COHORT_METRICS per session (failed is 1.0 for a failed session, else 0.0)."""

    def number(column: str) -> pd.Series:
        return pd.to_numeric(sessions[column], errors="coerce").astype("float64")

    return pd.DataFrame(
        {
            "cost": number("cost").fillna(0.0),
            "duration_ms": number("duration_ms"),
            "event_count": number("event_count"),
            "error_count": number("error_count"),
            "tokens": number("prompt_tokens").fillna(0) + number("completion_tokens").fillna(0),
            "failed": (sessions["end_state"] == "fail").astype("float64"),
        },
        index=sessions.index,
    )


def permutation_p_value(
    a: np.ndarray, b: np.ndarray, *, permutations: int = 2000, seed: int = 0
) -> float:
    """Two-sided p-value of the difference of means by a permutation test: how often shuffled
    labels give a difference at least as large. (k + 1) / (permutations + 1), never 0."""
    pooled = np.concatenate([a, b])
    observed = abs(b.mean() - a.mean())
    rng = np.random.default_rng(seed)
    shuffled = np.array([rng.permutation(pooled) for _ in range(permutations)])
    differences = np.abs(shuffled[:, len(a) :].mean(axis=1) - shuffled[:, : len(a)].mean(axis=1))
    extreme = int((differences >= observed - 1e-12).sum())
    return (extreme + 1) / (permutations + 1)


def compare_cohorts(
    sessions: pd.DataFrame,
    labels: pd.Series,
    *,
    alpha: float = 0.05,
    permutations: int = 2000,
    seed: int = 0,
) -> list[CohortDifference]:
    """Each of COHORT_METRICS for cohort a and b, the difference (b - a) and whether a
    permutation test finds it significant at `alpha`. Needs 2+ sessions per cohort for a p-value.
    Sessions with a missing value are left out of that metric only."""
    metrics = session_metrics(sessions)
    results = []
    for metric, label in COHORT_METRICS.items():
        a = metrics.loc[labels == "a", metric].dropna().to_numpy()
        b = metrics.loc[labels == "b", metric].dropna().to_numpy()
        a_mean = float(a.mean()) if len(a) else None
        b_mean = float(b.mean()) if len(b) else None
        difference = b_mean - a_mean if a_mean is not None and b_mean is not None else None
        p_value = None
        if len(a) >= 2 and len(b) >= 2:
            p_value = permutation_p_value(a, b, permutations=permutations, seed=seed)
        results.append(
            CohortDifference(
                metric=metric,
                label=label,
                a_mean=a_mean,
                b_mean=b_mean,
                a_count=len(a),
                b_count=len(b),
                difference=difference,
                relative=difference / a_mean if difference is not None and a_mean else None,
                p_value=p_value,
                is_significant=p_value is not None and p_value < alpha,
            )
        )
    return results


# --- Forecasts -------------------------------------------------------------------------------


def forecast_daily(
    daily: pd.Series, *, horizon: int, now: datetime, coverage: float = 0.8
) -> pd.DataFrame:
    """Forecast of a daily series (indexed by UTC day start, missing days counted as 0) for the
    `horizon` days after the day of `now`.

    With 14+ days of history: seasonal naive, each day as the same weekday of the last week; with
    less, the mean of the last 7 days. The interval adds the (1 - coverage) / 2 and
    (1 + coverage) / 2 quantiles of the method's past one-step errors (never below 0).
    Returns columns day, kind ("actual" or "forecast"), value, low, high.
    """
    today = pd.Timestamp(now).tz_convert("UTC").floor("1D")
    index = pd.date_range(end=today - pd.Timedelta(days=1), periods=max(len(daily), 1), freq="1D")
    if len(daily):
        start = min(pd.Timestamp(daily.index.min()).tz_convert("UTC"), index[0])
        index = pd.date_range(start, today - pd.Timedelta(days=1), freq="1D")
    history = daily.reindex(index, fill_value=0.0).astype("float64")
    is_seasonal = len(history) >= 14
    fitted = history.shift(7) if is_seasonal else history.rolling(7, min_periods=1).mean().shift(1)
    errors = (history - fitted).dropna()
    low_q, high_q = (1 - coverage) / 2, (1 + coverage) / 2
    low_err = float(errors.quantile(low_q)) if len(errors) else 0.0
    high_err = float(errors.quantile(high_q)) if len(errors) else 0.0
    days = pd.date_range(today, periods=horizon, freq="1D")
    if is_seasonal:
        last_week = history.iloc[-7:].to_numpy()
        values = np.array([last_week[i % 7] for i in range(horizon)])
    else:
        values = np.full(horizon, float(history.iloc[-7:].mean()) if len(history) else 0.0)
    actual = pd.DataFrame(
        {
            "day": history.index,
            "kind": "actual",
            "value": history.to_numpy(),
            "low": np.nan,
            "high": np.nan,
        }
    )
    forecast = pd.DataFrame(
        {
            "day": days,
            "kind": "forecast",
            "value": values,
            "low": np.maximum(values + low_err, 0.0),
            "high": np.maximum(values + high_err, 0.0),
        }
    )
    return pd.concat([actual, forecast], ignore_index=True)


FORECAST_METRICS = {
    "sessions": "sessions per day",
    "cost": "cost per day (USD)",
    "events": "events per day",
}


def daily_totals(rollups: pd.DataFrame, *, metric: str) -> pd.Series:
    """A daily series from hourly or daily rollups: sessions started (session rows), cost or
    events (span rows), indexed by UTC day start."""
    if metric not in FORECAST_METRICS:
        raise ValueError(f"unknown forecast metric {metric!r}")
    if len(rollups) == 0:
        return pd.Series(dtype="float64")
    is_session = rollups["kind"] == "session"
    rows = rollups[is_session] if metric == "sessions" else rollups[~is_session]
    column = "cost" if metric == "cost" else "count"
    days = pd.to_datetime(rows["bucket"], utc=True).dt.floor("1D")
    return rows[column].astype("float64").groupby(days).sum()
