"""Alert rules: the value of a rule's metric over its window, its next state (OK / ALERT /
NO DATA), whether to notify, and the signed webhook payload. Pure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

import pandas as pd

from analytics.span_errors import error_mask
from analytics.trends import RATE_LIMIT_PATTERN

OK, ALERT, NO_DATA = "ok", "alert", "no_data"
ALERT_METRICS = {
    "error_rate": "error rate",
    "error_count": "errors",
    "rate_limit_count": "rate-limit errors (HTTP 429)",
    "latency_p50_ms": "p50 latency (ms)",
    "latency_p95_ms": "p95 latency (ms)",
    "event_count": "events",
    "tokens": "tokens",
    "cost": "cost (USD)",
    "session_count": "sessions started",
    "failed_session_count": "failed sessions",
    "score_mean": "mean score (booleans: share of yes)",
}
SESSION_METRICS = ("session_count", "failed_session_count")
# Judged on the scores of the rule's score name given in the window, not on spans.
SCORE_METRICS = ("score_mean",)
COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
SIGNATURE_HEADER = "X-Observatory-Signature"


def _numbers(spans: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(spans[column], errors="coerce")


def _rate_limits(spans: pd.DataFrame) -> float:
    text = spans["error_type"].fillna("") + " " + spans["error_message"].fillna("")
    return float((error_mask(spans) & text.str.contains(RATE_LIMIT_PATTERN)).sum())


def _latency(q: float) -> Callable[[pd.DataFrame], float | None]:
    def quantile(spans: pd.DataFrame) -> float | None:
        timed = _numbers(spans, "duration_ms").dropna()
        return float(timed.quantile(q)) if len(timed) else None

    return quantile


SPAN_METRICS: dict[str, Callable[[pd.DataFrame], float | None]] = {
    "error_rate": lambda spans: float(error_mask(spans).mean()),
    "error_count": lambda spans: float(error_mask(spans).sum()),
    "rate_limit_count": _rate_limits,
    "latency_p50_ms": _latency(0.5),
    "latency_p95_ms": _latency(0.95),
    "event_count": lambda spans: float(len(spans)),
    "tokens": lambda spans: float(
        _numbers(spans, "prompt_tokens").fillna(0).sum()
        + _numbers(spans, "completion_tokens").fillna(0).sum()
    ),
    "cost": lambda spans: float(_numbers(spans, "cost").fillna(0).sum()),
}


def metric_value(
    spans: pd.DataFrame,
    sessions: pd.DataFrame,
    metric: str,
    scores: pd.DataFrame | None = None,
) -> float | None:
    """The metric over a rule's window, or None when there is no data to judge (no events for
    an event metric, no numeric or boolean score for a score metric; a count of sessions is 0,
    never None).

    spans: analytics.trends.SPAN_COLUMNS of the rule's scope; sessions: end_state; scores: the
    rule's score name's scores (value, None for a categorical one)."""
    if metric == "score_mean":
        values = (
            pd.to_numeric(scores["value"], errors="coerce").dropna()
            if scores is not None
            else pd.Series(dtype="float64")
        )
        return float(values.mean()) if len(values) else None
    if metric == "session_count":
        return float(len(sessions))
    if metric == "failed_session_count":
        return float((sessions["end_state"] == "fail").sum()) if len(sessions) else 0.0
    if metric not in SPAN_METRICS:
        raise ValueError(f"unknown alert metric {metric!r}")
    return SPAN_METRICS[metric](spans) if len(spans) else None


def metric_state(value: float | None, *, comparator: str, threshold: float) -> str:
    """ALERT when `value comparator threshold` holds, OK when not, NO_DATA without a value."""
    if value is None:
        return NO_DATA
    return ALERT if COMPARATORS[comparator](value, threshold) else OK


@dataclass(frozen=True)
class Decision:
    state: str
    should_notify: bool
    is_change: bool


def decide(
    *,
    previous_state: str,
    state: str,
    last_notified_at: datetime | None,
    renotify_minutes: int,
    now: datetime,
) -> Decision:
    """Notify on every change of state except between OK and NO DATA (quiet periods are not
    news), and again while ALERT lasts, every renotify_minutes (0: never again)."""
    is_change = state != previous_state
    quiet = {previous_state, state} == {OK, NO_DATA}
    if is_change:
        return Decision(state, not quiet, True)
    due = (
        state == ALERT
        and renotify_minutes > 0
        and (
            last_notified_at is None
            or now - last_notified_at >= timedelta(minutes=renotify_minutes)
        )
    )
    return Decision(state, due, False)


def describe_scope(*, agent: str, model: str, tool: str, score_name: str = "") -> str:
    if score_name:
        return f"score {score_name}"
    parts = [
        f"{name} {value}"
        for name, value in (("agent", agent), ("model", model), ("tool", tool))
        if value
    ]
    return ", ".join(parts) or "all events"


def metric_message(
    *,
    name: str,
    state: str,
    metric: str,
    value: float | None,
    comparator: str,
    threshold: float,
    window_minutes: int,
    scope: str,
) -> str:
    """One line: "[ALERT] Slow search: p95 latency (ms) of tool search was 4,100 > 2,000 in the
    last 60 min"."""
    label = ALERT_METRICS.get(metric, metric)
    if state == NO_DATA:
        return f"[NO DATA] {name}: no {label} data for {scope} in the last {window_minutes} min"
    assert value is not None
    holds = comparator if state == ALERT else _negated(comparator)
    return (
        f"[{state.upper()}] {name}: {label} of {scope} was {_number(value)} {holds} "
        f"{_number(threshold)} in the last {window_minutes} min"
    )


def anomaly_message(*, name: str, state: str, explanations: list[str]) -> str:
    if state != ALERT:
        return f"[OK] {name}: no new anomalies"
    more = f" (+{len(explanations) - 1} more)" if len(explanations) > 1 else ""
    return f"[ALERT] {name}: {explanations[0]}{more}"


def _negated(comparator: str) -> str:
    return {">": "<=", ">=": "<", "<": ">=", "<=": ">"}[comparator]


def _number(value: float) -> str:
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.4g}"


class WebhookPayload(TypedDict):
    rule: str
    rule_id: int
    project: str
    state: str
    previous_state: str
    value: float | None
    message: str
    at: str
    is_test: bool
    url: str


def webhook_payload(
    *,
    rule_id: int,
    rule: str,
    project: str,
    state: str,
    previous_state: str,
    value: float | None,
    message: str,
    at: datetime,
    is_test: bool,
    url: str,
    slack: bool,
) -> dict[str, Any]:
    """The JSON a webhook receives. `slack` adds `text` (Slack's incoming webhooks and most
    chat tools show it) alongside the structured fields."""
    payload: WebhookPayload = {
        "rule": rule,
        "rule_id": rule_id,
        "project": project,
        "state": state,
        "previous_state": previous_state,
        "value": value,
        "message": message,
        "at": at.isoformat(),
        "is_test": is_test,
        "url": url,
    }
    if slack:
        return {"text": f"{message} <{url}|Open in Agent Observatory>", **payload}
    return dict(payload)


def encode_payload(payload: dict[str, Any]) -> bytes:
    """Compact, key-sorted JSON: the exact bytes that are signed and sent."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def sign(body: bytes, secret: str) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def is_valid_signature(body: bytes, secret: str, header: str) -> bool:
    """What a receiver checks (in constant time)."""
    return hmac.compare_digest(sign(body, secret), header)
