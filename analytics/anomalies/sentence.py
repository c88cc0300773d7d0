"""The sentence that explains an anomaly flag, and how its values are written. Pure."""

from __future__ import annotations

from analytics.anomalies.baselines import (
    EDGE_ARROW,
    HOUR,
    METRICS,
    RATE_METRICS,
    AnomalyFlag,
    DetectionSettings,
    Series,
)
from analytics.anomalies.sparse import _Window

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


def explained_flag(
    series: Series,
    subject: str,
    window: _Window,
    settings: DetectionSettings,
    *,
    observed: float,
    sample_count: int,
    contribution: tuple[str, float | None],
    calls: int = 0,
    errors: int = 0,
) -> AnomalyFlag:
    """The flag of one episode (or sparse window) of a series, with the sentence explaining it.

    calls and errors are the evidence a window of several hours states (see explain)."""
    dimension, share = contribution
    return AnomalyFlag(
        subject_type=series.subject_type,
        subject=subject,
        metric=series.metric,
        window_start=window.start.to_pydatetime(),
        window_end=window.end.to_pydatetime(),
        observed=observed,
        baseline=window.baseline,
        score=round(window.score, 2),
        sample_count=sample_count,
        is_seasonal=window.is_seasonal,
        top_dimension=dimension,
        top_share=share,
        explanation=explain(
            series.subject_type,
            subject,
            series.metric,
            observed=observed,
            baseline=window.baseline,
            baseline_days=(
                settings.seasonal_weeks * 7 if window.is_seasonal else settings.baseline_days
            ),
            is_seasonal=window.is_seasonal,
            top_dimension=dimension,
            top_share=share,
            window_hours=int((window.end - window.start) / HOUR) if window.windowed else 0,
            calls=calls,
            errors=errors,
        ),
    )
