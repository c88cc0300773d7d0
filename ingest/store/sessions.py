"""Sessions and agent instances: sessions upserted and merged commutatively into the stored rows
(one UPDATE … FROM jsonb_to_recordset on PostgreSQL), agents upserted and merged.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from django.db import (
    connection,
)
from django.utils import timezone

from ingest import sql
from ingest.formats.records import (
    AgentRecord,
    Record,
    session_id_of,
)
from ingest.models import (
    Agent,
    Project,
    Session,
)
from ingest.session_merge import SessionChange, merge_change, session_changes
from ingest.store.bulk import _create, _json_bytes, _stored_rows, _update_rows

SESSION_MERGE_FIELDS = (
    "name",
    "name_at",
    "started_at",
    "ended_at",
    "end_state",
    "end_state_reason",
    "tags",
    "metadata",
    "config",
    "user_query",
    "parent_external_id",
    "group_key",
    "is_inferred",
    "is_summary_stale",
)


def _session_ids_in(records: list[Record]) -> set[str]:
    return {sid for r in records if (sid := session_id_of(r))}


def _upsert_sessions(
    project: Project, records: list[Record]
) -> tuple[dict[str, Session], set[int]]:
    """Create sessions any record names (inferred until their start arrives), merging the
    records into the new ones; stored sessions are merged at the end (_merge_stored_sessions).
    Returns the sessions by external id and the pks of those this batch created, which have
    nothing stored under them yet (the later upserts skip looking for their rows)."""
    wanted = _session_ids_in(records)
    if not wanted:
        return {}, set()
    ids = sorted(wanted)
    existing = {
        s.external_id: s
        for s in sql.select_rows(
            Session,
            f"t.project_id = %s AND t.external_id IN {sql.placeholders(ids)}",
            [project.pk, *ids],
        )
    }
    created = [
        Session(project=project, external_id=sid, is_inferred=True)
        for sid in sorted(wanted - existing.keys())
    ]
    news = {session.external_id: session for session in created}
    for session_id, change in session_changes(
        [r for r in records if session_id_of(r) in news]
    ).items():
        merge_change(news[session_id], change)
    existing.update(news)
    _create(created)
    if created and created[0].pk is None:
        # Backends that cannot return ids from a bulk insert: read them back in one query.
        pks = dict(
            Session.objects.filter(
                project=project, external_id__in=[s.external_id for s in created]
            ).values_list("external_id", "pk")
        )
        for session in created:
            session.pk = pks[session.external_id]
    return existing, {s.pk for s in created}


def _stored_session_changes(
    sessions: dict[str, Session], created: set[int], records: list[Record]
) -> dict[int, SessionChange]:
    """The batch's change to each session it did not create in its transaction (`created`),
    by pk, leaving out the sessions it changes nothing in (by the row read at the start of the
    batch). Reads only the batch and those rows, so it runs before the trace lock
    (store.traces._lock_traces) and only the write waits; _merge_stored_sessions writes it."""
    stored = {sid: s for sid, s in sessions.items() if s.pk not in created}
    if not stored:
        return {}
    changes = session_changes([r for r in records if session_id_of(r) in stored])
    touched: dict[int, SessionChange] = {}
    for session_id, change in changes.items():
        session = stored[session_id]
        before = (*_merge_snapshot(session), session.is_summary_stale)
        merge_change(session, change)
        if (*_merge_snapshot(session), True) != before:
            touched[session.pk] = change
    return touched


def _merge_stored_sessions(touched: dict[int, SessionChange]) -> None:
    """Merge the changes (_stored_session_changes) into the stored sessions, as the batch's
    last write. On PostgreSQL one UPDATE merges each change into the row as it is when the
    UPDATE runs (_update_stored_sessions), so a concurrent batch's change to the same session
    is kept, not overwritten, without reading the rows again under a lock."""
    if not touched:
        return
    if connection.vendor == "postgresql":
        _update_stored_sessions(touched)
        return
    # Elsewhere (SQLite: one writer at a time) the rows are read again and merged in Python.
    fresh = sql.select_rows(
        Session, f"t.id IN {sql.placeholders(list(touched))} ORDER BY t.id", list(touched)
    )
    for session in fresh:
        merge_change(session, touched[session.pk])
    _update_rows(fresh, SESSION_MERGE_FIELDS)


# session_merge.merge_change() in one statement. `s` is the row as it is when the UPDATE runs:
# after waiting for a concurrent writer's commit, PostgreSQL evaluates SET on the row that
# writer left (so every comparison with the stored row is here, not in a subquery, which would
# see the row as it was when the statement began). `v` is the batch's change. The rows are
# locked in id order first (the CTE), so two batches never deadlock; NO KEY UPDATE, as an
# UPDATE of these columns takes, since a plain FOR UPDATE also blocks the foreign-key checks of
# concurrent inserts. Names compare in code-point order (COLLATE "C"), as Python compares them.
TAKE_END = "v.has_end AND (s.ended_at IS NULL OR v.ended_at IS NULL OR v.ended_at >= s.ended_at)"


TAKE_NAME = (
    "v.name IS NOT NULL AND (v.name_at IS NULL OR s.name = '' OR (s.name_at IS NOT NULL AND "
    '(v.name_at, v.name COLLATE "C") < (s.name_at, s.name COLLATE "C")))'
)


UPDATE_STORED_SESSIONS = f"""
WITH v AS (
    SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(
        id bigint, is_started boolean, started_at timestamptz, earliest timestamptz,
        has_end boolean, ended_at timestamptz, end_state text, end_state_reason text, name text,
        name_at timestamptz, tags jsonb, metadata jsonb, config jsonb, user_query text,
        parent_external_id text, group_key text
    )
), locked AS (
    SELECT id FROM ingest_session WHERE id IN (SELECT id FROM v) ORDER BY id FOR NO KEY UPDATE
)
UPDATE ingest_session s SET
    started_at = CASE
        WHEN v.started_at IS NULL THEN CASE
            WHEN (s.is_inferred AND NOT v.is_started) OR s.started_at IS NULL
            THEN LEAST(s.started_at, v.earliest) ELSE s.started_at END
        WHEN s.is_inferred AND NOT v.is_started THEN LEAST(v.started_at, v.earliest)
        WHEN s.is_inferred OR s.started_at IS NULL THEN v.started_at
        ELSE LEAST(s.started_at, v.started_at) END,
    is_inferred = s.is_inferred AND NOT v.is_started,
    ended_at = CASE WHEN {TAKE_END} THEN v.ended_at ELSE s.ended_at END,
    end_state = CASE WHEN {TAKE_END} THEN v.end_state ELSE s.end_state END,
    end_state_reason = CASE WHEN {TAKE_END} THEN v.end_state_reason ELSE s.end_state_reason END,
    name = CASE WHEN {TAKE_NAME} THEN v.name ELSE s.name END,
    name_at = CASE WHEN {TAKE_NAME} THEN v.name_at ELSE s.name_at END,
    tags = COALESCE(v.tags, s.tags),
    metadata = CASE WHEN v.metadata IS NULL THEN s.metadata
        ELSE COALESCE(s.metadata, '{{}}'::jsonb) || v.metadata END,
    config = COALESCE(v.config, s.config),
    user_query = COALESCE(v.user_query, s.user_query),
    parent_external_id = COALESCE(v.parent_external_id, s.parent_external_id),
    group_key = COALESCE(v.group_key, s.group_key),
    is_summary_stale = true
FROM v JOIN locked USING (id)
WHERE s.id = v.id
"""


# The columns of `v` above: jsonb_to_recordset matches them to the keys by name.
SESSION_CHANGE_COLUMNS = tuple(f.name for f in fields(SessionChange))


def _update_stored_sessions(changes: dict[int, SessionChange]) -> None:
    """PostgreSQL: merge each change into its stored session (by pk) in one statement. The
    changes go as one JSON document (a JSON null is SQL NULL): as sixteen arrays, psycopg
    quoted each element in Python, half of the statement's 6 ms under the trace lock."""
    rows = [
        {"id": pk, **{name: getattr(changes[pk], name) for name in SESSION_CHANGE_COLUMNS}}
        for pk in sorted(changes)
    ]
    with connection.cursor() as cursor:
        cursor.execute(UPDATE_STORED_SESSIONS, [_json_bytes(rows).decode()])


def _merge_snapshot(session: Session) -> tuple[Any, ...]:
    return tuple(getattr(session, name) for name in SESSION_MERGE_FIELDS[:-1])


def _upsert_agents(
    project: Project,
    sessions: dict[str, Session],
    new_sessions: set[int],
    records: list[AgentRecord],
) -> None:
    if not records:
        return
    keys = {(sessions[r.session_id].pk, r.agent_id) for r in records}
    existing = _stored_rows(Agent, ("session", "external_id"), keys, new_sessions)
    created: dict[tuple[int, str], Agent] = {}
    for record in records:
        key = (sessions[record.session_id].pk, record.agent_id)
        agent = existing.get(key) or created.get(key)
        if agent is None:
            agent = created[key] = Agent(
                project=project, session_id=key[0], external_id=record.agent_id
            )
        _merge_agent(agent, record)
    _create(list(created.values()))
    if existing:
        Agent.objects.bulk_update(
            list(existing.values()),
            [
                "name",
                "role",
                "init_params",
                "created_at",
                "terminated_at",
                "termination_reason",
                "status",
            ],
        )


def _merge_agent(agent: Agent, record: AgentRecord) -> None:
    for attr, value in (("name", record.name), ("role", record.role)):
        if value is not None:
            setattr(agent, attr, value)
    if record.init_params is not None:
        agent.init_params = record.init_params
    if record.action == "created":
        agent.created_at = record.at or agent.created_at
    else:
        agent.terminated_at = record.at or agent.terminated_at or timezone.now()
        agent.termination_reason = record.reason or agent.termination_reason
        agent.status = Agent.Status.TERMINATED
