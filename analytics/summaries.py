"""Session summaries (counts, tokens, cost, duration, error flag) computed from span rows. Pure."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from analytics.span_errors import is_error

SPAN_COLUMNS = [
    "session_id",
    "kind",
    "status",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "started_at",
    "ended_at",
]
SESSION_COLUMNS = ["id", "started_at", "ended_at"]


def session_summaries(
    spans: pd.DataFrame, sessions: pd.DataFrame, agent_names: dict[int, list[str]]
) -> dict[int, dict[str, Any]]:
    """Summary columns per session id.

    spans: SPAN_COLUMNS, one row per span (may be empty). sessions: SESSION_COLUMNS for every
    session to summarise, including those with no spans (they get zeros). agent_names: the names
    of each session's agents. Duration is end minus start; a session that has not ended runs
    to its last span end (or start), so a running session's duration grows as data arrives.
    """
    spans = spans.reindex(columns=SPAN_COLUMNS)
    # One pass over the rows in plain Python: pandas operations per session cost more than the
    # sums themselves at tens of spans a session (bench/followup_bench.py).
    groups: dict[int, list[Any]] = {}
    for row in spans.itertuples(index=False):
        groups.setdefault(int(row.session_id), []).append(row)
    summaries: dict[int, dict[str, Any]] = {}
    for session in sessions.itertuples(index=False):
        session_id = int(session.id)
        rows = groups.get(session_id, [])
        summaries[session_id] = _one_summary(rows, session.started_at, session.ended_at) | {
            "agent_names": sorted(set(agent_names.get(session_id, [])))
        }
    return summaries


def _one_summary(rows: list[Any], started_at: Any, ended_at: Any) -> dict[str, Any]:
    ends = [row.ended_at for row in rows if _present(row.ended_at)]
    starts = [row.started_at for row in rows if _present(row.started_at)]
    last_span_at = max(ends) if ends else (max(starts) if starts else None)
    errors = sum(1 for row in rows if is_error(row.kind, row.status))
    end = ended_at if _present(ended_at) else last_span_at
    duration = None
    if _present(started_at) and _present(end):
        duration = max((pd.Timestamp(end) - pd.Timestamp(started_at)).total_seconds() * 1000, 0.0)
    return {
        "event_count": len(rows),
        "llm_count": sum(1 for row in rows if row.kind == "llm"),
        "tool_count": sum(1 for row in rows if row.kind == "tool"),
        "error_count": errors,
        "has_errors": errors > 0,
        "prompt_tokens": int(sum(_number(row.prompt_tokens) for row in rows)),
        "completion_tokens": int(sum(_number(row.completion_tokens) for row in rows)),
        "cost": round(math.fsum(_number(row.cost) for row in rows), 8),
        "duration_ms": duration,
        "models_used": sorted({row.model for row in rows if _present(row.model) and row.model}),
    }


def _number(value: Any) -> float:
    return float(value) if _present(value) else 0.0


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value)
