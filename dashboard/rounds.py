"""The rounds of a multi-trace session: one OTLP trace each, with the round's user message and
reply from the chat stream. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Round:
    """One trace of a session, in round order (`number` counts from 1)."""

    number: int
    trace_id: str
    round_index: int | None
    started_at: datetime | None
    duration_ms: float | None
    span_count: int
    error_count: int
    user_text: str
    reply_text: str
    reason: str = ""  # why this trace is in the session (TraceLink.reason)

    @property
    def short_trace_id(self) -> str:
        return self.trace_id[:8]


def _messages(lines: Iterable[tuple[str, str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """Per trace id: the first user message and the last assistant message."""
    users: dict[str, str] = {}
    replies: dict[str, str] = {}
    for trace_id, role, text in lines:
        if not trace_id:
            continue
        if role == "user":
            users.setdefault(trace_id, text)
        elif role == "assistant":
            replies[trace_id] = text
    return users, replies


def rounds_with_messages(
    rounds: Sequence[Mapping[str, Any]], lines: Iterable[tuple[str, str, str]]
) -> list[Round]:
    """Rounds (analytics.queries.session_rounds rows, already in order) with their messages.

    `lines` are the chat stream's (trace_id, role, text) in stream order; a round's user message
    is its first `user` line and its reply the last `assistant` line carrying its trace id.
    """
    users, replies = _messages(lines)
    result = []
    for number, row in enumerate(rounds, start=1):
        started, ended = row.get("started_at"), row.get("ended_at")
        duration = (ended - started).total_seconds() * 1000 if started and ended else None
        trace_id = row["trace_id"]
        result.append(
            Round(
                number=number,
                trace_id=trace_id,
                round_index=row.get("round_index"),
                started_at=started,
                duration_ms=duration,
                span_count=row.get("span_count", 0),
                error_count=row.get("error_count", 0),
                user_text=users.get(trace_id, ""),
                reply_text=replies.get(trace_id, ""),
                reason=row.get("reason", ""),
            )
        )
    return result
