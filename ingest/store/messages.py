"""Inter-agent messages (record agent_message): lifecycle merged into one row per message, contents
and events.
"""

from __future__ import annotations

from ingest.formats.records import (
    AgentMessageRecord,
)
from ingest.lifecycle import STATE_FIELDS, MessageState, merge_message
from ingest.models import (
    Message,
    MessageContent,
    MessageEvent,
    Project,
    Session,
)
from ingest.store.bulk import _update_rows

# resolved_at and requeued_at are set by people (resolve, requeue), never by a lifecycle record.
MESSAGE_MERGE_FIELDS = tuple(f for f in STATE_FIELDS if f not in ("resolved_at", "requeued_at"))


MessageKey = tuple[int, str]


def _message_state(message: Message) -> MessageState:
    return MessageState(**{name: getattr(message, name) for name in STATE_FIELDS})


def _upsert_messages(
    project: Project, sessions: dict[str, Session], records: list[AgentMessageRecord]
) -> None:
    """Merge lifecycle records into messages by (session, message_id), in any order, then store
    their content and one MessageEvent per record. A fixed number of queries per batch."""
    if not records:
        return
    keyed = [((sessions[r.session_id].pk, r.message_id), r) for r in records]
    wanted = {key for key, _ in keyed}
    stored = Message.objects.filter(
        session_id__in={k[0] for k in wanted}, message_id__in={k[1] for k in wanted}
    )
    messages = {(m.session_id, m.message_id): m for m in stored}
    messages = {key: m for key, m in messages.items() if key in wanted}
    before = {key: _message_state(m) for key, m in messages.items()}
    states = dict(before)
    for key, record in keyed:
        states[key] = merge_message(states.get(key) or MessageState(), record)
    new_keys = [key for key in states if key not in messages]
    for key in new_keys:
        messages[key] = Message(project=project, session_id=key[0], message_id=key[1])
    for key, state in states.items():
        for name in MESSAGE_MERGE_FIELDS:
            setattr(messages[key], name, getattr(state, name))
    _create_messages(messages, new_keys)
    changed = [messages[key] for key, state in before.items() if states[key] != state]
    _update_rows(changed, MESSAGE_MERGE_FIELDS)
    _save_message_contents(messages, keyed, set(new_keys))
    MessageEvent.objects.bulk_create(
        [_message_event(project, messages[key].pk, record) for key, record in keyed],
        ignore_conflicts=True,
    )


def _create_messages(messages: dict[MessageKey, Message], new_keys: list[MessageKey]) -> None:
    rows = [messages[key] for key in new_keys]
    if not rows:
        return
    Message.objects.bulk_create(rows)
    if rows[0].pk is not None:
        return
    # Backends that cannot return ids from a bulk insert: read them back in one query.
    found = Message.objects.filter(
        session_id__in={k[0] for k in new_keys}, message_id__in={k[1] for k in new_keys}
    ).values_list("session_id", "message_id", "pk")
    pks = {(session_pk, message_id): pk for session_pk, message_id, pk in found}
    for key in new_keys:
        messages[key].pk = pks[key]


def _save_message_contents(
    messages: dict[MessageKey, Message],
    keyed: list[tuple[MessageKey, AgentMessageRecord]],
    new_keys: set[MessageKey],
) -> None:
    """The latest content a record carries wins; metadata is merged key by key."""
    said = [(key, r) for key, r in keyed if r.content is not None or r.metadata is not None]
    if not said:
        return
    old_pks = {messages[key].pk for key, _ in said if key not in new_keys}
    stored = MessageContent.objects.in_bulk(list(old_pks)) if old_pks else {}
    missing: dict[int, MessageContent] = {}
    for key, record in said:
        pk = messages[key].pk
        body = stored.get(pk) or missing.setdefault(pk, MessageContent(message_id=pk))
        if record.content is not None:
            body.content = record.content
        if record.metadata is not None:
            body.metadata = {**(body.metadata or {}), **record.metadata}
    MessageContent.objects.bulk_create(list(missing.values()))
    if stored:
        MessageContent.objects.bulk_update(list(stored.values()), ["content", "metadata"])


def _message_event(project: Project, message_pk: int, record: AgentMessageRecord) -> MessageEvent:
    return MessageEvent(
        project=project,
        message_id=message_pk,
        client_id=record.record_id,
        stage=record.stage,
        at=record.at,
        agent_external_id=record.agent_id,
        attempt=record.attempt,
        error_type=(record.error_type or "")[:200],
        error_message=(record.error_message or "")[:2000],
    )
