"""How a batch's records merge into the row of the session they name. Pure.

A batch's records are first folded into one SessionChange per session (session_changes), and
the change is then merged into the row as it is (merge_change; on PostgreSQL the store does the
same in one UPDATE, store.sessions._update_stored_sessions). Merging a change needs nothing read
before, so concurrent requests of one session never re-read and lock the row in the middle of their
transactions. The rules, field by field:

- start: a session.start ends the inference (`is_inferred`); the earliest start said wins. Until
  one comes, the session starts at the earliest thing seen in it (or at the start an update
  said), and a session with no start at all at its earliest record.
- end: the end with the latest time wins (an end without a time is taken, as the clients that
  send one mean "now"), with its state and reason.
- name: a client's name is taken; a root span's name (name_at set) only while the session has
  no client's name, the earliest root winning (equal times: the smaller name).
- tags, config, user_query, parent, group key: the value said last, in batch order and then in
  the order requests commit; metadata keys are merged, the later value per key winning.
- every change marks the summary stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ingest.formats.records import (
    AgentMessageRecord,
    AgentRecord,
    MetricRecord,
    Record,
    SessionRecord,
    SpanRecord,
    StepRecord,
    TranscriptRecord,
    WorkflowRecord,
    session_id_of,
)

INDETERMINATE = "indeterminate"


@dataclass(slots=True)
class SessionChange:
    """What one batch says about one session. None: not said."""

    is_started: bool = False
    started_at: datetime | None = None  # the earliest start a start or update record said
    earliest: datetime | None = None  # the earliest time of anything else in the session
    has_end: bool = False
    ended_at: datetime | None = None
    end_state: str = ""
    end_state_reason: str = ""
    name: str | None = None
    name_at: datetime | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    user_query: str | None = None
    parent_external_id: str | None = None
    group_key: str | None = None


class SessionRow(Protocol):
    """The fields of a stored session (ingest.models.Session) the merge reads and writes."""

    name: str
    name_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    end_state: str
    end_state_reason: str
    tags: Any
    metadata: Any
    config: Any
    user_query: str
    parent_external_id: str
    group_key: str
    is_inferred: bool
    is_summary_stale: bool


def session_changes(records: list[Record]) -> dict[str, SessionChange]:
    """One SessionChange per session id the records name, folded in batch order."""
    changes: dict[str, SessionChange] = {}
    for record in records:
        session_id = session_id_of(record)
        if not session_id:
            continue
        change = changes.get(session_id)
        if change is None:
            change = changes[session_id] = SessionChange()
        if isinstance(record, SessionRecord):
            _fold_session_record(change, record)
        else:
            change.earliest = earliest(change.earliest, record_time(record))
    return changes


def _fold_session_record(change: SessionChange, record: SessionRecord) -> None:
    if record.action == "start":
        change.is_started = True
    change.started_at = earliest(change.started_at, record.started_at)
    if record.action == "end" and is_later_end(change.ended_at, change.has_end, record.ended_at):
        change.has_end = True
        change.ended_at = record.ended_at
        change.end_state = record.end_state or INDETERMINATE
        change.end_state_reason = record.end_state_reason or ""
    if record.action == "end":
        change.earliest = earliest(change.earliest, record.ended_at)
    if record.name is not None and takes_name(
        record.name, record.name_at, change.name or "", change.name_at
    ):
        change.name, change.name_at = record.name, record.name_at
    if record.tags is not None:
        change.tags = list(record.tags)
    if record.metadata is not None:
        change.metadata = {**(change.metadata or {}), **record.metadata}
    for attr, value in (
        ("config", record.config),
        ("user_query", record.user_query),
        ("parent_external_id", record.parent_session_id),
        ("group_key", record.group_key),
    ):
        if value is not None:
            setattr(change, attr, value)


def merge_change(session: SessionRow, change: SessionChange) -> None:
    """Merge `change` into `session` by the rules above (what the store's UPDATE does in SQL)."""
    started = session.started_at
    if change.started_at is not None:
        if session.is_inferred or started is None:
            started = change.started_at
        else:
            started = min(started, change.started_at)
    if (session.is_inferred and not change.is_started) or started is None:
        started = earliest(started, change.earliest)
    session.started_at = started
    session.is_inferred = session.is_inferred and not change.is_started
    if change.has_end and is_later_end(session.ended_at, True, change.ended_at):
        session.ended_at = change.ended_at
        session.end_state = change.end_state
        session.end_state_reason = change.end_state_reason
    if change.name is not None and takes_name(
        change.name, change.name_at, session.name, session.name_at
    ):
        session.name, session.name_at = change.name, change.name_at
    if change.tags is not None:
        session.tags = change.tags
    if change.metadata is not None:
        session.metadata = {**(session.metadata or {}), **change.metadata}
    for attr in ("config", "user_query", "parent_external_id", "group_key"):
        value = getattr(change, attr)
        if value is not None:
            setattr(session, attr, value)
    session.is_summary_stale = True


def is_later_end(stored: datetime | None, has_end: bool, ended_at: datetime | None) -> bool:
    """An end older than the one stored (an earlier round of a multi-trace session arriving
    late) does not reopen or rewrite the session's end."""
    return not has_end or stored is None or ended_at is None or ended_at >= stored


def takes_name(
    name: str, name_at: datetime | None, stored: str, stored_at: datetime | None
) -> bool:
    """A client's name always; a root span's name unless the session has a client's name or
    one from an earlier root (equal times: the smaller name, so any order agrees)."""
    if name_at is None or not stored:
        return True
    if stored_at is None:
        return False
    return (name_at, name) < (stored_at, stored)


def earliest(first: datetime | None, second: datetime | None) -> datetime | None:
    if first is None:
        return second
    if second is None:
        return first
    return min(first, second)


def record_time(record: Record) -> datetime | None:
    """When a record that is not a session record happened (its span's start)."""
    if isinstance(record, SpanRecord):
        return record.started_at
    if isinstance(
        record,
        AgentRecord
        | TranscriptRecord
        | MetricRecord
        | AgentMessageRecord
        | WorkflowRecord
        | StepRecord,
    ):
        return record.at
    return None
