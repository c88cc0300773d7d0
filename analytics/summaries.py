"""Session summaries (counts, tokens, cost, duration, error flag) computed from span rows. Pure."""

from __future__ import annotations

from typing import Any

import pandas as pd

from analytics.span_errors import error_mask

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
    groups = {int(key): frame for key, frame in spans.groupby("session_id")}
    empty = spans.iloc[0:0]
    summaries: dict[int, dict[str, Any]] = {}
    for session in sessions.itertuples(index=False):
        session_id = int(session.id)
        rows = groups.get(session_id, empty)
        summaries[session_id] = _one_summary(rows, session.started_at, session.ended_at) | {
            "agent_names": sorted(set(agent_names.get(session_id, [])))
        }
    return summaries


def _one_summary(rows: pd.DataFrame, started_at: Any, ended_at: Any) -> dict[str, Any]:
    last_span_at = rows["ended_at"].max() if rows["ended_at"].notna().any() else None
    if last_span_at is None and len(rows):
        last_span_at = rows["started_at"].max()
    errors = int(error_mask(rows).sum())
    models = sorted({m for m in rows["model"].dropna() if m})
    end = ended_at if _present(ended_at) else last_span_at
    duration = None
    if _present(started_at) and _present(end):
        duration = max((pd.Timestamp(end) - pd.Timestamp(started_at)).total_seconds() * 1000, 0.0)
    return {
        "event_count": len(rows),
        "llm_count": int((rows["kind"] == "llm").sum()),
        "tool_count": int((rows["kind"] == "tool").sum()),
        "error_count": errors,
        "has_errors": errors > 0,
        "prompt_tokens": int(rows["prompt_tokens"].fillna(0).sum()),
        "completion_tokens": int(rows["completion_tokens"].fillna(0).sum()),
        "cost": round(float(rows["cost"].fillna(0).sum()), 8),
        "duration_ms": duration,
        "models_used": models,
    }


def _present(value: Any) -> bool:
    return value is not None and not pd.isna(value)
