"""Rollups: spans and sessions bucketed by hour or day, agent, model, tool and kind. Pure.

A rollup row holds counts, errors, rate-limit hits, tokens, cost and latency. Latency comes twice:
exact p50/p95/p99 of the row's own calls, and a sparse log-scale histogram, so that percentiles of
any coarser grouping (all models of one agent, a whole day) can be merged from stored rows
(`merge_rollups`) without reading spans again. Histogram bins are LATENCY_BIN_BASE wide (10 %),
so a merged percentile is within about 5 % of the exact one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from analytics.span_errors import ERROR

DIMENSIONS = ["agent", "model", "tool", "kind"]
SESSION_KIND = "session"  # rollup rows of whole sessions: latency is the session's duration
FREQS = {"hour": "1h", "day": "1D"}
LATENCY_BIN_BASE = 1.1
QUANTILES = (0.5, 0.95, 0.99)
PERCENTILE_COLUMNS = ["latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]

SPAN_COLUMNS = [
    "started_at",
    "kind",
    "name",
    "agent_external_id",
    "model",
    "status",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "error_type",
    "error_message",
]
SESSION_COLUMNS = [
    "started_at",
    "end_state",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "event_count",
    "message_count",
]
SUM_COLUMNS = [
    "count",
    "error_count",
    "rate_limit_count",
    "timed_count",
    "latency_sum_ms",
    "prompt_tokens",
    "completion_tokens",
    "token_call_count",
    "cost",
    "step_count",
    "message_count",
]
ROLLUP_COLUMNS = [
    "bucket",
    *DIMENSIONS,
    *SUM_COLUMNS,
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "latency_histogram",
]

# Provider throttling: HTTP 429 or a "rate limit" / "throttled" error, however it is spelled.
RATE_LIMIT_PATTERN = re.compile(r"\b429\b|rate[ _-]?limit|throttl|too many requests", re.I)


def is_rate_limit(error_type: object, error_message: object) -> bool:
    """Whether an error names provider throttling (429, RateLimitError, "rate limit reached")."""
    return bool(RATE_LIMIT_PATTERN.search(f"{error_type or ''} {error_message or ''}"))


def latency_bin(ms: float) -> int:
    """The histogram bin of a latency: bin b holds [BASE**b, BASE**(b+1)) ms; below 1 ms is 0."""
    return math.floor(math.log(max(ms, 1.0)) / math.log(LATENCY_BIN_BASE))


def bin_middle_ms(index: int) -> float:
    """The geometric middle of a bin, used as the value of every call in it."""
    return float(LATENCY_BIN_BASE ** (index + 0.5))


def _numbers(frame: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].fillna("").astype(str)


def empty_rollups() -> pd.DataFrame:
    return pd.DataFrame(columns=ROLLUP_COLUMNS)


def _span_facts(spans: pd.DataFrame, freq: str) -> pd.DataFrame:
    """One row per span with its bucket, dimensions and the numbers rollups sum."""
    kind = _text(spans, "kind")
    status = _text(spans, "status")
    is_error = (kind == ERROR) | (status == ERROR)
    rate_limited = (
        (_text(spans, "error_type") + " " + _text(spans, "error_message"))
        .str.contains(RATE_LIMIT_PATTERN)
        .fillna(False)
    )
    prompt = _numbers(spans, "prompt_tokens")
    completion = _numbers(spans, "completion_tokens")
    return pd.DataFrame(
        {
            "bucket": pd.to_datetime(spans["started_at"], utc=True).dt.floor(freq),
            "agent": _text(spans, "agent_external_id"),
            "model": _text(spans, "model"),
            "tool": _text(spans, "name").where(kind == "tool", ""),
            "kind": kind,
            "count": 1,
            "error_count": is_error.astype("int64"),
            "rate_limit_count": (is_error & rate_limited).astype("int64"),
            "duration_ms": _numbers(spans, "duration_ms"),
            "prompt_tokens": prompt.fillna(0),
            "completion_tokens": completion.fillna(0),
            "token_call_count": (prompt.notna() | completion.notna()).astype("int64"),
            "cost": _numbers(spans, "cost").fillna(0.0),
            "step_count": 0,
            "message_count": 0,
        }
    )


def span_rollups(spans: pd.DataFrame, *, freq: str = "1h") -> pd.DataFrame:
    """Rollup rows of spans per bucket, agent, model, tool and kind.

    spans: SPAN_COLUMNS, one row per span (numbers may be missing; duration_ms missing means the
    call is counted but not timed). tool is the span name for kind "tool", empty otherwise.
    Returns ROLLUP_COLUMNS, sorted by bucket then dimensions; latency columns are NaN for a row
    with no timed call. Deterministic: the same spans give the same rows.
    """
    if len(spans) == 0:
        return empty_rollups()
    return _rollup(_span_facts(spans, freq))


def session_rollups(sessions: pd.DataFrame, *, freq: str = "1h") -> pd.DataFrame:
    """Rollup rows of whole sessions per bucket of their start, with kind SESSION_KIND.

    sessions: SESSION_COLUMNS. count is sessions, error_count failed sessions, latency the
    session's duration, step_count its events and message_count its user/assistant messages.
    """
    if len(sessions) == 0:
        return empty_rollups()
    facts = pd.DataFrame(
        {
            "bucket": pd.to_datetime(sessions["started_at"], utc=True).dt.floor(freq),
            "agent": "",
            "model": "",
            "tool": "",
            "kind": SESSION_KIND,
            "count": 1,
            "error_count": (_text(sessions, "end_state") == "fail").astype("int64"),
            "rate_limit_count": 0,
            "duration_ms": _numbers(sessions, "duration_ms"),
            "prompt_tokens": _numbers(sessions, "prompt_tokens").fillna(0),
            "completion_tokens": _numbers(sessions, "completion_tokens").fillna(0),
            "token_call_count": 0,
            "cost": _numbers(sessions, "cost").fillna(0.0),
            "step_count": _numbers(sessions, "event_count").fillna(0),
            "message_count": _numbers(sessions, "message_count").fillna(0),
        }
    )
    return _rollup(facts.dropna(subset=["bucket"]))


def _rollup(facts: pd.DataFrame) -> pd.DataFrame:
    keys = ["bucket", *DIMENSIONS]
    facts = facts.assign(
        timed_count=facts["duration_ms"].notna().astype("int64"),
        latency_sum_ms=facts["duration_ms"].fillna(0.0),
    )
    grouped = facts.groupby(keys, sort=True)
    sums = grouped[SUM_COLUMNS].sum()
    timed = facts.dropna(subset=["duration_ms"])
    if len(timed):
        quantiles = timed.groupby(keys)["duration_ms"].quantile(list(QUANTILES)).unstack()
        quantiles.columns = PERCENTILE_COLUMNS
        frame = sums.join(quantiles, how="left")
    else:
        frame = sums.assign(**dict.fromkeys(PERCENTILE_COLUMNS, float("nan")))
    frame["latency_histogram"] = latency_histograms(timed, keys).reindex(frame.index)
    frame["latency_histogram"] = frame["latency_histogram"].apply(
        lambda value: value if isinstance(value, dict) else {}
    )
    frame = frame.reset_index()
    for column in SUM_COLUMNS:
        if column not in ("latency_sum_ms", "cost"):
            frame[column] = frame[column].astype("int64")
    return frame[ROLLUP_COLUMNS]


def latency_histograms(timed: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Sparse {bin: calls} of duration_ms per `keys` group (rows with a duration only); bins as
    strings so the dict survives a JSON round trip."""
    if len(timed) == 0:
        return pd.Series(dtype=object)
    bins = np.floor(
        np.log(np.maximum(timed["duration_ms"].to_numpy(), 1.0)) / math.log(LATENCY_BIN_BASE)
    ).astype("int64")
    counts = timed.assign(bin=bins).groupby([*keys, "bin"]).size()
    histograms: dict[Any, dict[str, int]] = {}
    for (*group, bin_index), calls in counts.items():
        histograms.setdefault(tuple(group), {})[str(bin_index)] = int(calls)
    index = pd.MultiIndex.from_tuples(list(histograms), names=keys)
    return pd.Series(list(histograms.values()), index=index, dtype=object)


def merged_histogram(histograms: Sequence[dict[str, int]]) -> dict[int, int]:
    """The sum of sparse histograms, keyed by bin index."""
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, calls in (histogram or {}).items():
            total[int(key)] = total.get(int(key), 0) + int(calls)
    return total


def histogram_quantile(histogram: dict[int, int], q: float) -> float | None:
    """The q-quantile of a merged histogram (bin middles), or None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    rank = q * (total - 1)
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen > rank:
            return bin_middle_ms(index)
    return bin_middle_ms(max(histogram))


def grouped_histogram_quantiles(
    rollups: pd.DataFrame, *, by: Sequence[str], quantiles: Sequence[float] = QUANTILES
) -> pd.DataFrame:
    """Percentiles of the merged histograms of each `by` group, vectorised over all groups.

    Returns one row per group that has timed calls, in the order of the groups' keys: the `by`
    columns and `p<q*100>` per quantile (bin middles, as histogram_quantile)."""
    by = list(by)
    names = [f"p{round(q * 100)}" for q in quantiles]
    histograms = rollups["latency_histogram"].to_numpy()
    lengths = np.fromiter((len(h or {}) for h in histograms), dtype="int64", count=len(histograms))
    if lengths.sum() == 0:
        return pd.DataFrame(columns=[*by, *names])
    # Groups become integer codes (in key order) and the bins one (code, bin, calls) array,
    # aggregated with numpy: a pandas groupby on the keys themselves cost most of a trends page.
    row_codes = rollups.groupby(by, sort=True, dropna=False).ngroup().to_numpy()
    filled = [h for h in histograms if h]
    bins = np.fromiter(map(int, chain.from_iterable(filled)), dtype="int64")
    calls = np.fromiter(map(int, chain.from_iterable(h.values() for h in filled)), dtype="int64")
    codes = np.repeat(row_codes, lengths)
    order = np.lexsort((bins, codes))
    codes, bins, calls = codes[order], bins[order], calls[order]
    starts = np.flatnonzero(np.r_[True, (codes[1:] != codes[:-1]) | (bins[1:] != bins[:-1])])
    codes, bins, calls = codes[starts], bins[starts], np.add.reduceat(calls, starts)
    group_starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    sizes = np.diff(np.r_[group_starts, len(codes)])
    running = np.cumsum(calls)
    cumulative = running - np.repeat(running[group_starts] - calls[group_starts], sizes)
    total = np.repeat(np.add.reduceat(calls, group_starts), sizes)
    _, first_rows = np.unique(row_codes, return_index=True)
    result = rollups[by].iloc[first_rows[codes[group_starts]]].reset_index(drop=True)
    never = np.iinfo("int64").max
    for q, name in zip(quantiles, names, strict=True):
        # The first bin whose cumulative count passes the rank, as histogram_quantile does.
        hit = np.where(cumulative > q * (total - 1), bins, never)
        first = np.minimum.reduceat(hit, group_starts).astype("float64")
        first[first == never] = np.nan
        result[name] = LATENCY_BIN_BASE ** (first + 0.5)
    return result


def calls_above(histogram: dict[str, int], threshold_ms: float) -> int:
    """Calls in bins that lie wholly above threshold_ms (slow calls, for contributions)."""
    cut = latency_bin(threshold_ms)
    return sum(int(calls) for key, calls in (histogram or {}).items() if int(key) > cut)


def merge_rollups(
    rollups: pd.DataFrame, *, by: Sequence[str], percentiles: bool = True
) -> pd.DataFrame:
    """Rollup rows summed over every dimension not in `by` (e.g. by=["bucket", "model"]).

    Sums add up; percentiles come from the merged histograms, within the range of the rows' own
    percentiles (so a group of one row keeps its exact ones). Adds error_rate (errors / count),
    tokens_per_call and latency_mean_ms. Returns the `by` columns then the sums, percentiles and
    ratios, sorted by `by`. `percentiles=False` leaves the percentiles empty (NaN) for a caller
    that shows none: merging the histograms is most of the cost.
    """
    by = list(by)
    columns = [*by, *SUM_COLUMNS, "latency_p50_ms", "latency_p95_ms", "latency_p99_ms"]
    if len(rollups) == 0:
        return _with_ratios(pd.DataFrame(columns=columns))
    grouped = rollups.groupby(by, sort=True, dropna=False)
    sums = grouped[SUM_COLUMNS].sum()
    if not percentiles:
        sums = sums.assign(**dict.fromkeys(PERCENTILE_COLUMNS, np.nan))
        return _with_ratios(sums.reset_index()[columns])
    merged = grouped_histogram_quantiles(rollups, by=by).set_index(by)
    merged.columns = PERCENTILE_COLUMNS
    merged = merged.reindex(sums.index)
    # A quantile of merged rows lies between the rows' own (exact) quantiles: the histogram's
    # bin-middle estimate is clamped into that range, so a group of one row keeps its exact
    # percentiles, and hours that all took 500 ms merge into a day that took 500 ms.
    lowest = grouped[PERCENTILE_COLUMNS].min()
    highest = grouped[PERCENTILE_COLUMNS].max()
    for column in PERCENTILE_COLUMNS:
        sums[column] = merged[column].clip(lower=lowest[column], upper=highest[column])
    return _with_ratios(sums.reset_index()[columns])


def named_rollups(rollups: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The rollups with each agent id replaced by its name (ids without one stay) and the rows
    that then share bucket and dimensions merged: sums added, histograms merged, percentiles from
    the merged histogram (a group of one row keeps its exact ones). Pages read these, since OTLP
    and agentops give each session's agent its own id and rollups by id grow with sessions.

    rollups: ROLLUP_COLUMNS. Returns ROLLUP_COLUMNS sorted by bucket then dimensions."""
    if len(rollups) == 0:
        return empty_rollups()
    return _merged_by_bucket(
        rollups.assign(agent=rollups["agent"].map(lambda agent: names.get(agent, agent)))
    )


def day_rollups(hour_rollups: pd.DataFrame) -> pd.DataFrame:
    """The day rows of hourly rollups: the hours of each UTC day and dimensions merged (sums
    added, histograms merged, percentiles from the merged histogram; a group with one hour keeps
    its exact ones), so a refresh rebuilds a day without reading its spans again.

    hour_rollups: ROLLUP_COLUMNS. Returns ROLLUP_COLUMNS sorted by bucket then dimensions."""
    if len(hour_rollups) == 0:
        return empty_rollups()
    days = pd.to_datetime(hour_rollups["bucket"], utc=True).dt.floor(FREQS["day"])
    return _merged_by_bucket(hour_rollups.assign(bucket=days))


def _merged_by_bucket(rollups: pd.DataFrame) -> pd.DataFrame:
    """Rows that share bucket and dimensions merged into one, with the merged histogram."""
    keys = ["bucket", *DIMENSIONS]
    merged = merge_rollups(rollups, by=keys)
    grouped = rollups.groupby(keys, sort=True, dropna=False)["latency_histogram"]
    histograms = grouped.agg(lambda values: merged_histogram(list(values)))
    merged["latency_histogram"] = [
        {str(k): v for k, v in sorted(h.items())}
        for h in histograms.reindex(pd.MultiIndex.from_frame(merged[keys]))
    ]
    for column in SUM_COLUMNS:
        if column not in ("latency_sum_ms", "cost"):
            merged[column] = merged[column].astype("int64")
    return merged[ROLLUP_COLUMNS].reset_index(drop=True)


def _with_ratios(frame: pd.DataFrame) -> pd.DataFrame:
    count = pd.to_numeric(frame["count"], errors="coerce")
    token_calls = pd.to_numeric(frame["token_call_count"], errors="coerce")
    timed = pd.to_numeric(frame["timed_count"], errors="coerce")
    tokens = pd.to_numeric(frame["prompt_tokens"], errors="coerce") + pd.to_numeric(
        frame["completion_tokens"], errors="coerce"
    )
    frame = frame.copy()
    frame["error_rate"] = (pd.to_numeric(frame["error_count"]) / count).where(count > 0)
    frame["tokens_per_call"] = (tokens / token_calls).where(token_calls > 0)
    frame["latency_mean_ms"] = (pd.to_numeric(frame["latency_sum_ms"]) / timed).where(timed > 0)
    for column in ("latency_p50_ms", "latency_p95_ms", "latency_p99_ms"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame


def resource_trend(samples: pd.DataFrame, *, freq: str = "1h") -> pd.DataFrame:
    """Metric samples (memory, CPU, rate-limit counters…) per bucket and name: mean, max, count.

    samples: columns at, name, value. Returns bucket, name, mean, max, samples.
    """
    if len(samples) == 0:
        return pd.DataFrame(columns=["bucket", "name", "mean", "max", "samples"])
    frame = pd.DataFrame(
        {
            "bucket": pd.to_datetime(samples["at"], utc=True).dt.floor(freq),
            "name": _text(samples, "name"),
            "value": _numbers(samples, "value"),
        }
    ).dropna(subset=["value"])
    grouped = frame.groupby(["bucket", "name"])["value"]
    result = pd.DataFrame(
        {"mean": grouped.mean(), "max": grouped.max(), "samples": grouped.size()}
    ).reset_index()
    return result.sort_values(["name", "bucket"]).reset_index(drop=True)


SERIES_GROUPS = ("agent", "model", "tool", "kind")


def trend_series(
    rollups: pd.DataFrame,
    *,
    group: str | None,
    kinds: Sequence[str] = (),
    percentiles: bool = True,
) -> pd.DataFrame:
    """The rows behind a trend chart: per bucket and value of `group` (None: one series), the
    merged counts, rates, percentiles (unless `percentiles=False`), tokens and cost. Only rollups
    of `kinds` when given (session rows are left out unless asked for). Rows whose group value is
    empty are left out when grouping by tool or model (calls with no tool or model). Returns
    bucket, group, then merge_rollups' columns, sorted by bucket and group."""
    if group is not None and group not in SERIES_GROUPS:
        raise ValueError(f"unknown group {group!r}; one of {', '.join(SERIES_GROUPS)}")
    rows = rollups
    if len(rows):
        rows = rows[rows["kind"].isin(kinds)] if kinds else rows[rows["kind"] != SESSION_KIND]
        if group in ("tool", "model"):
            rows = rows[rows[group] != ""]
    rows = rows.assign(group=rows[group] if group else "")
    return merge_rollups(rows, by=["bucket", "group"], percentiles=percentiles)
