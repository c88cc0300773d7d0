"""Session summaries (counts, tokens, cost, duration, error flag) computed from span rows. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple

from analytics.span_errors import is_error


class SpanRow(NamedTuple):
    """A span as the summaries read it (SPAN_COLUMNS, in the database's order)."""

    session_id: int
    kind: str
    status: str
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None
    started_at: datetime | None
    ended_at: datetime | None


class SessionRow(NamedTuple):
    id: int
    started_at: datetime | None
    ended_at: datetime | None


SPAN_COLUMNS = list(SpanRow._fields)
SESSION_COLUMNS = list(SessionRow._fields)


def session_summaries(
    spans: Iterable[Sequence[Any]],
    sessions: Iterable[Sequence[Any]],
    agent_names: dict[int, list[str]],
) -> dict[int, dict[str, Any]]:
    """Summary columns per session id.

    spans: tuples in SPAN_COLUMNS order, one per span (may be none). sessions: tuples in
    SESSION_COLUMNS order for every session to summarise, including those with no spans (they
    get zeros). agent_names: the names of each session's agents. Duration is end minus start;
    a session that has not ended runs to its last span end (or start), so a running session's
    duration grows as data arrives.
    """
    # Rows as the database gives them, in plain Python: a DataFrame per batch cost more to
    # build and to iterate again than the sums themselves (bench/followup_bench.py).
    groups: dict[int, list[Any]] = {}
    for values in spans:
        row = SpanRow._make(values)
        groups.setdefault(int(row.session_id), []).append(row)
    summaries: dict[int, dict[str, Any]] = {}
    for session in map(SessionRow._make, sessions):
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
        duration = max((end - started_at).total_seconds() * 1000, 0.0)
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
    return value is not None and value == value  # NaN is the one value unequal to itself


def is_follow_up_due(
    summarized_spans: int, spans_now: int, *, every_batch_below: int, growth_percent: int
) -> bool:
    """Whether a session's follow-up (summary, search entries, detectors) runs after this
    batch, given the spans its summary counted and the spans it has now. A small session runs
    every time; a bigger one once it has grown by `growth_percent` (or lost spans). The rereads
    of a session of n spans then add up to about n * (100 + growth) / growth spans (5n at 25 %)
    however many batches brought them, where one reread per batch grew with the square of the
    batches. A session not due waits for the sweep."""
    if summarized_spans < every_batch_below or spans_now < summarized_spans:
        return True
    return (spans_now - summarized_spans) * 100 >= summarized_spans * growth_percent
