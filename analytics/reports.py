"""Performance reports: rollups grouped and cut to the chosen metrics (the on-demand builder and
the CSV of scheduled reports), and the summary a report's HTML shows. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

# One formula-safe CSV writer for the API and reports (pure, no Django).
from analytics.safe_csv import csv_rows
from analytics.trends import SESSION_KIND, merge_rollups

REPORT_METRICS = {
    "count": "calls",
    "error_count": "errors",
    "error_rate": "error rate",
    "rate_limit_count": "429s",
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
    "latency_p99_ms": "p99 ms",
    "prompt_tokens": "tokens in",
    "completion_tokens": "tokens out",
    "tokens_per_call": "tokens per call",
    "cost": "cost USD",
}
GROUPINGS = {
    "all": ["bucket", "agent", "model", "tool", "kind"],
    "day": ["bucket"],
    "hour": ["bucket"],
    "agent": ["agent"],
    "model": ["model"],
    "tool": ["tool"],
    "kind": ["kind"],
    "agent_model": ["agent", "model"],
    "day_model": ["bucket", "model"],
}
DAILY_GROUPINGS = ("all", "day", "day_model")
DEFAULT_METRICS = ("count", "error_rate", "latency_p50_ms", "latency_p95_ms", "cost")
TOP_ROWS = 10


def report_table(
    rollups: pd.DataFrame, *, grouping: str, metrics: tuple[str, ...] | list[str]
) -> pd.DataFrame:
    """Span rollups (session rows left out) summed by `grouping` with the chosen metrics, one
    row per group sorted by it ("all", "day" and "day_model" put hours in their day). Columns:
    the grouping's columns (bucket as an ISO time), then the metrics in REPORT_METRICS order."""
    if grouping not in GROUPINGS:
        raise ValueError(f"unknown grouping {grouping!r}")
    unknown = [m for m in metrics if m not in REPORT_METRICS]
    if unknown:
        raise ValueError(f"unknown metrics: {', '.join(unknown)}")
    by = GROUPINGS[grouping]
    spans = rollups[rollups["kind"] != SESSION_KIND] if len(rollups) else rollups
    if grouping in DAILY_GROUPINGS and len(spans):
        spans = spans.assign(bucket=pd.to_datetime(spans["bucket"], utc=True).dt.floor("1D"))
    merged = merge_rollups(spans, by=by)
    chosen = [m for m in REPORT_METRICS if m in metrics]
    table = merged[[*by, *chosen]].copy()
    if "bucket" in by:
        table["bucket"] = pd.to_datetime(table["bucket"], utc=True).map(lambda t: t.isoformat())
    for column in ("error_rate", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "cost"):
        if column in table:
            table[column] = table[column].astype("float64").round(6)
    return table.reset_index(drop=True)


def table_csv(table: pd.DataFrame) -> str:
    """The table as formula-safe CSV text (the API's CSV writer), header first."""
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    return "".join(csv_rows(list(table.columns), rows))


@dataclass(frozen=True)
class ReportSummary:
    since: datetime
    until: datetime
    session_count: int
    failed_session_count: int
    event_count: int
    error_count: int
    error_rate: float
    rate_limit_count: int
    llm_p50_ms: float | None
    llm_p95_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    previous_cost: float
    previous_session_count: int
    by_model: pd.DataFrame
    by_agent: pd.DataFrame
    by_tool: pd.DataFrame


def _kind_rows(rollups: pd.DataFrame, *, sessions: bool) -> pd.DataFrame:
    if len(rollups) == 0:
        return rollups
    is_session = rollups["kind"] == SESSION_KIND
    return rollups[is_session if sessions else ~is_session]


def _totals(rollups: pd.DataFrame) -> dict[str, float]:
    """Sums and merged percentiles of all the rows (zeros and NaN when there are none)."""
    if len(rollups) == 0:
        return {
            "count": 0,
            "error_count": 0,
            "rate_limit_count": 0,
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "cost": 0.0,
            "latency_p50_ms": float("nan"),
            "latency_p95_ms": float("nan"),
        }
    merged = merge_rollups(rollups.assign(all=1), by=["all"])
    return {column: merged[column].iloc[0] for column in merged.columns}


def _number_or_none(value: float) -> float | None:
    return None if pd.isna(value) else float(value)


def report_summary(
    rollups: pd.DataFrame, previous: pd.DataFrame, *, since: datetime, until: datetime
) -> ReportSummary:
    """The headline numbers of [since, until), the previous period's cost and sessions for
    comparison, and the top models (by cost), agents (by errors) and tools (by p95 latency).

    rollups and previous: rollups (analytics.trends.ROLLUP_COLUMNS) of the period and of the
    one before it."""
    spans = _kind_rows(rollups, sessions=False)
    total = _totals(spans)
    llm = _totals(spans[spans["kind"] == "llm"] if len(spans) else spans)
    sessions = _totals(_kind_rows(rollups, sessions=True))
    count, errors = int(total["count"]), int(total["error_count"])
    return ReportSummary(
        since=since,
        until=until,
        session_count=int(sessions["count"]),
        failed_session_count=int(sessions["error_count"]),
        event_count=count,
        error_count=errors,
        error_rate=errors / count if count else 0.0,
        rate_limit_count=int(total["rate_limit_count"]),
        llm_p50_ms=_number_or_none(llm["latency_p50_ms"]),
        llm_p95_ms=_number_or_none(llm["latency_p95_ms"]),
        prompt_tokens=int(total["prompt_tokens"]),
        completion_tokens=int(total["completion_tokens"]),
        cost=float(total["cost"]),
        previous_cost=float(_totals(_kind_rows(previous, sessions=False))["cost"]),
        previous_session_count=int(_totals(_kind_rows(previous, sessions=True))["count"]),
        by_model=_top(spans, "model", "cost"),
        by_agent=_top(spans, "agent", "error_count"),
        by_tool=_top(spans, "tool", "latency_p95_ms"),
    )


def _top(rollups: pd.DataFrame, column: str, order: str) -> pd.DataFrame:
    named = rollups[rollups[column] != ""] if len(rollups) else rollups
    table = report_table(named, grouping=column, metrics=(*DEFAULT_METRICS, "error_count"))
    return table.sort_values(order, ascending=False, na_position="last").head(TOP_ROWS)


def period_bounds(period: str, *, now: datetime) -> tuple[datetime, datetime]:
    """The last complete period before `now`: yesterday (UTC), or last week (Monday to Monday)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        return today - timedelta(days=1), today
    if period == "weekly":
        monday = today - timedelta(days=today.weekday())
        return monday - timedelta(weeks=1), monday
    raise ValueError(f"unknown report period {period!r}")


def table_rows(table: pd.DataFrame, column: str) -> list[dict[str, object]]:
    """A table's rows as dicts for a template, `name` taken from `column`, NaN as None."""
    clean = table.astype(object).where(table.notna(), None)
    return [{"name": row[column], **row} for row in clean.to_dict("records")]
