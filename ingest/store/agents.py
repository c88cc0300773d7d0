"""The walk of stored traces: each span's nearest agent ancestor, delegations and hand-offs between
agents as messages, and the pending ends of messages stored early.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import (
    connection,
)
from django.db.models import Q

from ingest import sql
from ingest.formats.otlp_flows import RECEIVER_SPAN_KEY, SENDER_SPAN_KEY
from ingest.formats.records import (
    AgentMessageRecord,
    AgentRecord,
    SpanRecord,
)
from ingest.models import (
    Message,
    Session,
    Span,
    Step,
)
from ingest.store.bulk import _update_rows


def _relink_span_agents(
    sessions: dict[str, Session], spans: list[SpanRecord], agents: list[AgentRecord]
) -> TraceWalk:
    """OTLP: a span's agent is its nearest agent ancestor in the whole stored trace, whatever
    request each span came in (SimpleSpanProcessor sends children before their parents). The
    mapping resolves what one request holds; this fills in the rest once the parent lands.
    Runs only when the batch has an OTLP span without its agent or a new agent span.

    The same walk over the stored trace finds what only the whole trace says: the delegation
    messages to store (_trace_messages) and the agents of hand-offs stored without a sender
    (_fill_pending_ends).
    """
    otlp = [r for r in spans if r.trace_id]
    if not otlp or not (agents or any(r.parent_span_id and not r.agent_id for r in otlp)):
        return TraceWalk()
    session_pks = sorted({sessions[r.session_id].pk for r in otlp})
    trace_ids = sorted({r.trace_id for r in otlp})
    in_sessions, session_params = sql.in_values("session_id", session_pks)
    in_traces, trace_params = sql.in_values("trace_id", trace_ids)
    # Written out (ingest/sql.py): this runs for nearly every one-span request, and the ORM's
    # compile of the two reads was most of its 2.4 ms (bench/README.md). The span read is every
    # span of the batch's traces: only the columns of the walk (times come in _trace_messages,
    # for the few delegations).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT session_id, external_id, name FROM ingest_agent WHERE {in_sessions}",
            session_params,
        )
        agent_names = {(session, external): name for session, external, name in cursor}
        cursor.execute(
            "SELECT id, session_id, span_id, parent_span_id, agent_external_id, trace_id "
            f"FROM ingest_span WHERE {in_sessions} AND {in_traces}",
            [*session_params, *trace_params],
        )
        rows = cursor.fetchall()
    parent_of = {(row[1], row[2]): row[3] for row in rows}
    changed: list[Span] = []
    agent_of: dict[tuple[int, str], str] = {}
    newly: set[tuple[int, str]] = set()
    for pk, session, span_id, parent, current, *_ in rows:
        agent = _nearest_agent(session, parent, parent_of, agent_names)
        agent_of[(session, span_id)] = agent or current
        if agent and agent != current:
            changed.append(Span(pk=pk, agent_external_id=agent))
            newly.add((session, span_id))
    # The batch's own agent spans may be delegations even when the request held their caller.
    newly |= {(sessions[r.session_id].pk, r.agent_id) for r in agents if r.session_id in sessions}
    if not newly:
        # Nothing learnt: every delegation and pending end was settled when its span's agent
        # was (that is when the span's agent changes) or its agent span came.
        return TraceWalk(parent_of=parent_of)
    _update_rows(changed, ["agent_external_id"])
    external = {s.pk: s.external_id for s in sessions.values()}
    messages = _trace_messages(
        external, [r for r in rows if (r[1], r[2]) in newly], agent_of, agent_names
    )
    return TraceWalk(external, agent_of, agent_names, messages, newly, parent_of)


DELEGATION_PREFIX = "delegation:"


HANDOFF_PREFIX = "handoff:"


def _trace_messages(
    external: dict[int, str],
    rows: list[tuple[Any, ...]],
    agent_of: dict[tuple[int, str], str],
    agent_names: dict[tuple[int, str], str],
) -> list[AgentMessageRecord]:
    """Delegations, which only the whole stored trace shows (so they come out the same however
    its spans were split into requests): an agent span whose nearest agent ancestor is another
    agent (pydantic-ai's agent called through a tool, a smolagents managed agent) was called by
    it. An inferred message from caller to callee, sent and received when the callee starts,
    processed (or failed) when it ends; stored once."""
    calls: dict[tuple[int, str], tuple[Any, ...]] = {}
    for row in rows:
        session, span_id = row[1], row[2]
        callee = agent_names.get((session, span_id), "")
        caller = agent_names.get((session, agent_of.get((session, span_id), "")), "")
        if callee and caller and caller != callee:
            calls[(session, f"{DELEGATION_PREFIX}{span_id}"[:128])] = row
    if not calls:
        return []
    stored = set(
        Message.objects.filter(
            session_id__in={k[0] for k in calls}, message_id__in={k[1] for k in calls}
        ).values_list("session_id", "message_id")
    )
    calls = {key: row for key, row in calls.items() if key not in stored}
    times = {
        pk: (started, ended, status)
        for pk, started, ended, status in Span.objects.filter(
            pk__in=[row[0] for row in calls.values()]
        ).values_list("pk", "started_at", "ended_at", "status")
    }
    records: list[AgentMessageRecord] = []
    for (session, message_id), row in calls.items():
        pk, _, span_id, _, _, trace_id = row
        started, ended, status = times[pk]
        callee = agent_names[(session, span_id)]
        caller = agent_names[(session, agent_of[(session, span_id)])]
        base = f"otlp-delegation:{trace_id}:{span_id}"
        sent = AgentMessageRecord(
            record_id=f"{base}:sent",
            session_id=external[session],
            message_id=message_id,
            stage="sent",
            at=started,
            sender=caller,
            receivers=(callee,),
            channel="delegation",
            metadata={"observatory.inferred": True, "observatory.rule": "agent span under agent"},
            agent_id=caller,
            trace_id=trace_id,
        )
        received = replace(
            sent,
            record_id=f"{base}:received",
            stage="received",
            sender=None,
            receivers=None,
            metadata=None,
            agent_id=callee,
        )
        records += [sent, received]
        if ended is not None:
            stage = "failed" if status == Span.Status.ERROR else "processed"
            records.append(replace(received, record_id=f"{base}:{stage}", stage=stage, at=ended))
    return records


@dataclass
class TraceWalk:
    """What _relink_span_agents learnt of the stored traces of a batch: each span's agent and
    each agent span's name (by session pk and span id), and the messages it derived."""

    external: dict[int, str] = field(default_factory=dict)
    agent_of: dict[tuple[int, str], str] = field(default_factory=dict)
    agent_names: dict[tuple[int, str], str] = field(default_factory=dict)
    messages: list[AgentMessageRecord] = field(default_factory=list)
    # (session pk, span id) of the spans whose agent this batch learnt.
    newly: set[tuple[int, str]] = field(default_factory=set)
    # Each stored span's parent in the batch's traces, when the walk read them (else None).
    parent_of: dict[tuple[int, str], str] | None = None

    def name_of(self, session: int, span_id: str) -> str:
        """The name of the agent span `span_id` ran under, or ""."""
        return self.agent_names.get((session, self.agent_of.get((session, span_id), "")), "")


def _fill_pending_ends(walk: TraceWalk) -> None:
    """After the batch's messages and steps are stored: the agents the mapping could not name
    because they were in another request (otlp_flows.agent_pending), now that the walk of the
    stored trace found them. Hand-offs without a sender (CrewAI's delegation tool span before
    its agent's), messaging spans' senders and receivers, steps without an agent."""
    if not walk.external:
        return
    filled = _fill_message_ends(walk)
    if filled:
        Message.objects.bulk_update(filled, ["sender", "receivers"])
    session_pks = sorted(walk.external)
    span_ids = sorted({span for _, span in walk.newly})
    # Written out (ingest/sql.py): every request that brings an agent span runs it.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT st.id, st.step_id, w.session_id FROM ingest_step st JOIN ingest_workflow w "
            f"ON w.id = st.workflow_id WHERE w.session_id IN {sql.placeholders(session_pks)} "
            f"AND st.agent_external_id = '' AND st.step_id IN {sql.placeholders(span_ids)}",
            [*session_pks, *span_ids],
        )
        rows = cursor.fetchall()
    steps = [
        Step(pk=pk, agent_external_id=name)
        for pk, step_id, session in rows
        if (name := walk.name_of(session, step_id))
    ]
    _update_rows(steps, ["agent_external_id"])


def _fill_message_ends(walk: TraceWalk) -> list[Message]:
    sessions = walk.external.keys()
    filled: dict[int, Message] = {}
    for message in Message.objects.filter(
        session_id__in=sessions,
        sender="",
        message_id__in={f"{HANDOFF_PREFIX}{span}" for _, span in walk.newly},
    ).only("pk", "session_id", "message_id", "sender", "receivers"):
        name = walk.name_of(message.session_id, message.message_id[len(HANDOFF_PREFIX) :])
        if name:
            message.sender = name
            filled[message.pk] = message
    marked = Message.objects.filter(session_id__in=sessions).filter(
        Q(body__metadata__has_key=SENDER_SPAN_KEY) | Q(body__metadata__has_key=RECEIVER_SPAN_KEY)
    )
    for found in marked.select_related("body").only(
        "pk", "session_id", "sender", "receivers", "body__metadata"
    ):
        message = filled.get(found.pk, found)
        said = found.body.metadata or {}
        sender = walk.name_of(message.session_id, str(said.get(SENDER_SPAN_KEY, "")))
        receiver = walk.name_of(message.session_id, str(said.get(RECEIVER_SPAN_KEY, "")))
        if sender and message.sender != sender:
            message.sender = sender
            filled[message.pk] = message
        if receiver and message.receivers != [receiver]:
            message.receivers = [receiver]
            filled[message.pk] = message
    return list(filled.values())


def _nearest_agent(
    session: int,
    parent: str,
    parent_of: dict[tuple[int, str], str],
    agents: Collection[tuple[int, str]],
) -> str:
    return next((key[1] for key in _ancestors(session, parent, parent_of) if key in agents), "")


def _ancestors(
    session: int, parent: str, parent_of: dict[tuple[int, str], str]
) -> Iterator[tuple[int, str]]:
    """(session pk, span id) of `parent` and the spans above it in the stored trace, nearest
    first; bounded, so a cycle in agent-written parent ids cannot loop."""
    seen = 0
    while parent and seen <= len(parent_of):
        yield (session, parent)
        parent = parent_of.get((session, parent), "")
        seen += 1
