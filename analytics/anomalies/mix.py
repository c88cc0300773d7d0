"""Mix expectation: whether a model's or tool's flagged level is only the mix of its agents'
calls moving, each agent behaving as usual. Pure.
"""

from __future__ import annotations

import pandas as pd

from analytics.anomalies.baselines import (
    DEFAULT_WINDOW_EVIDENCE,
    RATE_METRICS,
    WINDOW_EVIDENCE,
    DetectionSettings,
    _episode_value,
)
from analytics.trends import bin_middle_ms, merged_histogram

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
