"""How the lifecycle records of one inter-agent message merge into its row. Pure.

Every rule is commutative, so the records of a message may arrive in any order (and in any
batches) and still give the same row: first-time stages (created, sent) keep the earliest time,
the others the latest; the status is the stage with the latest time; timings are derived from
the merged times. The ledger guarantees each record is applied once, which is what makes the
retry counter safe to increment.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from ingest.formats.records import MESSAGE_STAGES, AgentMessageRecord

# Stages that can happen again (a redelivery after a retry) keep their latest time; these two
# mark when the message began, so they keep the first.
FIRST_TIME_STAGES = ("created", "sent")
FAILURE_STAGES = ("failed", "dead_lettered", "expired")
SUCCESS_STAGES = ("delivered", "received", "processed")
# Breaks ties between stages reported at the same instant: the further along (or the worse) wins.
STAGE_RANK = {
    "created": 0,
    "sent": 1,
    "retried": 2,
    "delivered": 3,
    "received": 4,
    "processed": 5,
    "failed": 6,
    "expired": 7,
    "dead_lettered": 8,
}
PREVIEW_CHARS = 200
TEXT_FIELDS = ("sender", "channel", "correlation_id", "causation_id", "content_type")


@dataclass(frozen=True)
class MessageState:
    """The merged columns of a Message row (the names are the model's field names)."""

    started_at: datetime | None = None
    sender: str = ""
    receivers: list[str] = field(default_factory=list)
    channel: str = ""
    correlation_id: str = ""
    causation_id: str = ""
    content_type: str = ""
    content_size: int | None = None
    preview: str = ""
    status: str = "created"
    created_at: datetime | None = None
    sent_at: datetime | None = None
    delivered_at: datetime | None = None
    received_at: datetime | None = None
    processed_at: datetime | None = None
    failed_at: datetime | None = None
    retried_at: datetime | None = None
    dead_lettered_at: datetime | None = None
    expired_at: datetime | None = None
    delivery_ms: float | None = None
    processing_ms: float | None = None
    end_to_end_ms: float | None = None
    attempt_count: int = 0
    retry_count: int = 0
    error_type: str = ""
    error_message: str = ""
    last_attempt_at: datetime | None = None
    dead_letter_state: str = ""
    resolved_at: datetime | None = None
    requeued_at: datetime | None = None


STATE_FIELDS = tuple(f.name for f in fields(MessageState))


def content_preview(content: Any) -> str:
    """The first PREVIEW_CHARS characters of the content as text (JSON for structured content)."""
    if content is None:
        return ""
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    text = " ".join(text[: PREVIEW_CHARS * 2].split())
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def merge_message(state: MessageState, record: AgentMessageRecord) -> MessageState:
    """The state after one more lifecycle record; the result does not depend on arrival order."""
    changes: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = getattr(record, name)
        if value:
            changes[name] = value
    if record.receivers:
        changes["receivers"] = list(record.receivers)
    if record.content is not None:
        changes["preview"] = content_preview(record.content)
    if record.content_size is not None:
        changes["content_size"] = record.content_size
    column = f"{record.stage}_at"
    current: datetime | None = getattr(state, column)
    is_first_time = record.stage in FIRST_TIME_STAGES
    if current is None or (record.at < current if is_first_time else record.at >= current):
        changes[column] = record.at
    if record.stage in FAILURE_STAGES and _is_latest_failure(state, record.at):
        changes["error_type"] = record.error_type or state.error_type
        changes["error_message"] = (record.error_message or state.error_message)[:2000]
    if record.stage == "retried":
        changes["retry_count"] = state.retry_count + 1
    if record.attempt is not None:
        changes["attempt_count"] = max(state.attempt_count, record.attempt)
    return derived(replace(state, **changes))


def _is_latest_failure(state: MessageState, at: datetime) -> bool:
    times = [t for t in (state.failed_at, state.dead_lettered_at, state.expired_at) if t]
    return not times or at >= max(times)


def _stage_times(state: MessageState) -> dict[str, datetime]:
    times = {stage: getattr(state, f"{stage}_at") for stage in MESSAGE_STAGES}
    return {stage: at for stage, at in times.items() if at is not None}


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


def derived(state: MessageState) -> MessageState:
    """Status, start, stage timings, attempts and dead-letter state from the merged times."""
    times = _stage_times(state)
    if not times:
        return state
    status = max(times, key=lambda stage: (times[stage], STAGE_RANK[stage]))
    attempts = [t for t in (state.sent_at, state.retried_at, state.failed_at) if t]
    has_attempt = bool(attempts) or state.delivered_at is not None
    state = replace(
        state,
        status=status,
        started_at=min(times.values()),
        delivery_ms=_ms(state.sent_at or state.created_at, state.delivered_at),
        processing_ms=_ms(state.received_at or state.delivered_at, state.processed_at),
        end_to_end_ms=_ms(state.created_at or state.sent_at, state.processed_at),
        attempt_count=max(state.attempt_count, state.retry_count + 1 if has_attempt else 0),
        last_attempt_at=max(attempts) if attempts else None,
    )
    return replace(state, dead_letter_state=dead_letter_state(state))


def _failure_time(state: MessageState) -> datetime | None:
    times = [t for t in (state.failed_at, state.dead_lettered_at, state.expired_at) if t]
    return max(times) if times else None


def dead_letter_state(state: MessageState) -> str:
    """open when the message ends in a failure; recovered once a message that failed got through
    after all; "" while it is in flight again (retried). requeued and resolved are set by people
    and hold until a newer failure reopens them. Only those two depend on history."""
    current = state.dead_letter_state
    failed_at = _failure_time(state)
    if failed_at is None:
        return current
    held = current in ("resolved", "requeued")
    if state.status in FAILURE_STAGES:
        since = state.resolved_at if current == "resolved" else state.requeued_at
        return current if held and since is not None and failed_at <= since else "open"
    if state.status in SUCCESS_STAGES:
        return "resolved" if current == "resolved" else "recovered"
    return current if held else ""
