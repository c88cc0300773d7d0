"""Synthetic telemetry with injected anomalies, for the detector's tests and bench/. Pure.

Three agents share each session: a planner on gpt-4o, a researcher on gpt-4o-mini or claude that
calls the search and fetch tools, a writer on gpt-4o or claude that sometimes runs code. Load and
latency follow the hour of day. An Injection makes one subject slower, more error-prone, more
verbose or costlier for some hours, and records the ground truth the detector should find.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from analytics.trends import SESSION_COLUMNS

LLM_MEDIAN_MS = {"gpt-4o": 900.0, "gpt-4o-mini": 450.0, "claude": 1100.0}
TOOL_MEDIAN_MS = {"search": 600.0, "fetch": 1200.0, "code": 300.0}
PRICE_PER_TOKEN = {"gpt-4o": 5e-6, "gpt-4o-mini": 0.3e-6, "claude": 6e-6}
LLM_ERROR_RATE = 0.02
TOOL_ERROR_RATE = 0.04


@dataclass(frozen=True)
class Injection:
    """`metric` of `subject_type` `subject` changes by `factor` for `hours` from `start`.

    `via` narrows it to the calls with one other dimension value (e.g. ("model", "gpt-4o")): the
    detector should then name it as the top contributing dimension. For error_rate, factor is
    the error rate itself."""

    subject_type: str  # agent, tool, model or project
    subject: str
    metric: str  # latency_p95, error_rate, tokens_per_call, cost_per_session
    start: datetime
    hours: int
    factor: float
    via: tuple[str, str] | None = None

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


@dataclass(frozen=True)
class SyntheticData:
    spans: pd.DataFrame  # analytics.trends.SPAN_COLUMNS plus session_index
    sessions: pd.DataFrame  # analytics.trends.SESSION_COLUMNS
    injections: tuple[Injection, ...]


# (agent, kind, choices of model or tool, calls per session low..high)
CALL_PLAN = (
    ("planner", "llm", ("gpt-4o",), (1, 2)),
    ("researcher", "llm", ("gpt-4o-mini", "claude"), (1, 3)),
    ("researcher", "tool", ("search", "fetch"), (1, 3)),
    ("writer", "llm", ("gpt-4o", "claude"), (1, 1)),
    ("writer", "tool", ("code",), (0, 1)),
)


def _load(hours: np.ndarray) -> np.ndarray:
    """Busier and slower in the afternoon UTC: 0.6 at 03:00, 1.4 at 15:00."""
    return 1.0 - 0.4 * np.cos(2 * np.pi * (hours - 3) / 24)


def synthetic_telemetry(
    *,
    now: datetime,
    days: int,
    sessions_per_hour: float,
    injections: tuple[Injection, ...] = (),
    seed: int = 1,
) -> SyntheticData:
    """`days` of sessions ending at `now`, with the injections applied."""
    rng = np.random.default_rng(seed)
    first_hour = pd.Timestamp(now).floor("1h") - pd.Timedelta(days=days)
    hour_starts = pd.date_range(first_hour, periods=days * 24, freq="1h")
    per_hour = rng.poisson(sessions_per_hour * _load(hour_starts.hour.to_numpy()))
    naive = hour_starts.tz_localize(None).to_numpy().astype("datetime64[ns]")
    # Whole milliseconds: the database keeps microseconds, and tests compare with it.
    starts = np.repeat(naive, per_hour) + rng.uniform(0, 3600e3, per_hour.sum()).astype(
        "timedelta64[ms]"
    )
    spans = pd.concat(
        [_calls(rng, starts, *plan) for plan in CALL_PLAN], ignore_index=True
    ).sort_values("started_at", kind="stable")
    spans = _inject(rng, spans, injections)
    sessions = _sessions(starts, spans, injections)
    return SyntheticData(spans.reset_index(drop=True), sessions, injections)


def _calls(
    rng: np.random.Generator,
    starts: np.ndarray,
    agent: str,
    kind: str,
    choices: tuple[str, ...],
    calls: tuple[int, int],
) -> pd.DataFrame:
    per_session = rng.integers(calls[0], calls[1] + 1, len(starts))
    session_index = np.repeat(np.arange(len(starts)), per_session)
    n = len(session_index)
    started = starts[session_index] + rng.uniform(0, 60e3, n).astype("timedelta64[ms]")
    target = rng.choice(choices, n)
    load = _load(pd.DatetimeIndex(started).hour.to_numpy())
    medians = LLM_MEDIAN_MS if kind == "llm" else TOOL_MEDIAN_MS
    duration = np.array([medians[t] for t in target]) * load * rng.lognormal(0, 0.3, n)
    is_error = rng.random(n) < (LLM_ERROR_RATE if kind == "llm" else TOOL_ERROR_RATE)
    is_llm = kind == "llm"
    prompt = rng.integers(300, 1500, n) if is_llm else np.zeros(n)
    completion = rng.integers(50, 400, n) if is_llm else np.zeros(n)
    return pd.DataFrame(
        {
            "started_at": pd.DatetimeIndex(started, tz="UTC"),
            "kind": kind,
            "name": "chat" if is_llm else target,
            "agent_external_id": agent,
            "model": target if is_llm else "",
            "status": np.where(is_error, "error", "ok"),
            "duration_ms": duration,
            "prompt_tokens": prompt if is_llm else np.nan,
            "completion_tokens": completion if is_llm else np.nan,
            "cost": 0.0,
            "error_type": np.where(is_error, "ServiceError", ""),
            "error_message": np.where(is_error, "upstream failed", ""),
            "session_index": session_index,
        }
    )


def _mask(spans: pd.DataFrame, injection: Injection) -> pd.Series:
    times = spans["started_at"]
    mask = (times >= pd.Timestamp(injection.start)) & (times < pd.Timestamp(injection.end))
    if injection.subject_type == "tool":
        mask &= (spans["kind"] == "tool") & (spans["name"] == injection.subject)
    elif injection.subject_type == "model":
        mask &= (spans["kind"] == "llm") & (spans["model"] == injection.subject)
    elif injection.subject_type == "agent":
        mask &= (spans["kind"] == "llm") & (spans["agent_external_id"] == injection.subject)
    if injection.via:
        column = {"agent": "agent_external_id"}.get(injection.via[0], injection.via[0])
        mask &= spans[column] == injection.via[1]
    return mask


def _inject(
    rng: np.random.Generator, spans: pd.DataFrame, injections: tuple[Injection, ...]
) -> pd.DataFrame:
    spans = spans.copy()
    for injection in injections:
        if injection.metric == "cost_per_session":
            continue
        mask = _mask(spans, injection)
        if injection.metric == "latency_p95":
            spans.loc[mask, "duration_ms"] *= injection.factor
        elif injection.metric == "error_rate":
            failing = mask & (rng.random(len(spans)) < injection.factor)
            spans.loc[failing, ["status", "error_type"]] = ["error", "ServiceError"]
            spans.loc[failing, "error_message"] = "upstream failed"
        elif injection.metric == "tokens_per_call":
            spans.loc[mask, ["prompt_tokens", "completion_tokens"]] *= injection.factor
    prices = spans["model"].map(PRICE_PER_TOKEN).fillna(0.0)
    tokens = spans["prompt_tokens"].fillna(0) + spans["completion_tokens"].fillna(0)
    spans["cost"] = (tokens * prices).where(spans["kind"] == "llm")
    for injection in injections:
        if injection.metric == "cost_per_session":
            times = spans["started_at"]
            mask = (times >= pd.Timestamp(injection.start)) & (times < pd.Timestamp(injection.end))
            spans.loc[mask & (spans["kind"] == "llm"), "cost"] *= injection.factor
    return spans


def _sessions(
    starts: np.ndarray, spans: pd.DataFrame, injections: tuple[Injection, ...]
) -> pd.DataFrame:
    per_session = (
        spans.assign(is_error=spans["status"] == "error")
        .groupby("session_index")
        .agg(
            prompt_tokens=("prompt_tokens", "sum"),
            completion_tokens=("completion_tokens", "sum"),
            cost=("cost", "sum"),
            event_count=("kind", "size"),
            errors=("is_error", "sum"),
            last=("started_at", "max"),
        )
    )
    per_session = per_session.reindex(range(len(starts)))
    started = pd.DatetimeIndex(starts, tz="UTC")
    return pd.DataFrame(
        {
            "started_at": started,
            "end_state": np.where(per_session["errors"].fillna(0) > 1, "fail", "success"),
            "duration_ms": ((per_session["last"] - started).dt.total_seconds() * 1000 + 2000)
            .fillna(2000)
            .to_numpy(),
            "prompt_tokens": per_session["prompt_tokens"].fillna(0).to_numpy(),
            "completion_tokens": per_session["completion_tokens"].fillna(0).to_numpy(),
            "cost": per_session["cost"].fillna(0).to_numpy(),
            "event_count": per_session["event_count"].fillna(0).to_numpy(),
            "message_count": 2,
        },
        columns=SESSION_COLUMNS,
    )


def finds(flag: tuple[str, str, str, datetime, datetime], injection: Injection) -> bool:
    """A flag (subject_type, subject, metric, window_start, window_end) finds this injection:
    same subject and metric, overlapping windows."""
    subject_type, subject, metric, start, end = flag
    same = (subject_type, subject, metric) == (
        injection.subject_type,
        injection.subject,
        injection.metric,
    )
    return same and start < injection.end and end > injection.start


def is_explained(flag: tuple[str, str, str, datetime, datetime], injection: Injection) -> bool:
    """The flag is a knock-on effect of the injection: the same metric, at the same time (a
    slow model makes the agents that use it slow too)."""
    _, _, metric, start, end = flag
    return metric == injection.metric and start < injection.end and end > injection.start
