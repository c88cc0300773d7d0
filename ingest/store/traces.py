"""Traces and their sessions: the per-trace lock of concurrent requests, span links and AutoGen
definitions that decide a trace's session, following links (records and stored rows move to the
named session), and saving trace links.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from django.db import (
    connection,
)

from ingest import sql
from ingest.formats.records import (
    AgentRecord,
    SessionRecord,
    SpanRecord,
    TraceLinkRecord,
    with_session_id,
)
from ingest.models import (
    Agent,
    Message,
    MetricSample,
    Project,
    Session,
    Span,
    TraceLink,
    TranscriptLine,
    Workflow,
)

# pg_advisory_xact_lock(TRACE_LOCK, hashtext("project pk:trace id")): see _lock_traces.
TRACE_LOCK = 0x54524143  # "TRAC"


def _lock_traces(project: Project, spans: list[SpanRecord]) -> None:
    """PostgreSQL: wait until the batches of these traces that got here first have committed.
    What follows reads each trace as stored to decide writes (the agents of its spans, the
    steps its implicit run hands to their workflow's run); two concurrent batches of one trace,
    each with one piece of a task's path to its workflow span, used to read the trace without
    the other's piece and both leave the steps in the implicit run (or deadlock deleting it).
    Now the later batch reads the earlier's rows. The spans are written already: only the rest
    of the batch waits. Keys in one sorted order: batches of several traces cannot deadlock."""
    if connection.vendor != "postgresql":
        return  # SQLite: one writer at a time already
    traces = sorted({f"{project.pk}:{r.trace_id}" for r in spans if r.trace_id})
    if not traces:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s::int4, k) FROM "
            "(SELECT DISTINCT hashtext(t) AS k FROM unnest(%s::text[]) t ORDER BY k) s",
            [TRACE_LOCK, traces],
        )


MAX_FOLLOWED_TRACES = 8


def _batch_links(
    project: Project, records: list[TraceLinkRecord], agents: list[AgentRecord]
) -> dict[str, TraceLinkRecord]:
    """The batch's trace links by trace id, each naming a session.

    A link that follows another trace (a span link, otlp._linked_trace) takes that trace's
    session: its link in this batch, else its stored link, else the trace's own session (if
    that trace is linked later, _move_trace carries this one along). A trace linked already
    keeps its stored session: a span link never overrides a link stored by any rule, so the
    result does not depend on which of a trace's spans came first.
    """
    definitions = [r for r in records if r.defined_agent]
    records = [r for r in records if not r.defined_agent]
    strong = {r.trace_id: r for r in records if not r.follows_trace}
    if definitions:
        strong |= _definition_links(project, definitions, strong, agents)
    follows = {r.trace_id: r for r in records if r.follows_trace and r.trace_id not in strong}
    if not follows:
        return strong
    links = dict(strong)
    stored = {
        trace: (session, reason)
        for trace, session, reason in TraceLink.objects.filter(
            project=project, trace_id__in=follows.keys() | {r.session_id for r in follows.values()}
        ).values_list("trace_id", "session__external_id", "reason")
    }
    for trace, record in follows.items():
        if trace in stored:
            session, reason = stored[trace]
            links[trace] = replace(record, session_id=session, reason=reason, follows_trace=False)
            continue
        target = record.session_id
        for _ in range(MAX_FOLLOWED_TRACES):
            if target in strong:
                target = strong[target].session_id
                break
            if target in stored:
                target = stored[target][0]
                break
            if target not in follows or target == trace:
                break
            target = follows[target].session_id
        if target != trace:
            links[trace] = replace(record, session_id=target, follows_trace=False)
    return links


# How long before a team run an AutoGen agent may have been created to be counted in it.
DEFINITION_WINDOW = timedelta(minutes=15)


AUTOGEN_TEAM_PREFIX = "autogen-team-"


def _definition_reason(agent: str, team_session: str) -> str:
    return (
        f"AutoGen agent {agent} created before team {team_session[len(AUTOGEN_TEAM_PREFIX) :]} "
        "used it (the next team run with that agent)"
    )


def _definition_links(
    project: Project,
    definitions: list[TraceLinkRecord],
    strong: dict[str, TraceLinkRecord],
    agents: list[AgentRecord],
) -> dict[str, TraceLinkRecord]:
    """Links for the batch's AutoGen create_agent traces: to the team run with the earliest
    agent of that name at most DEFINITION_WINDOW after the creation, among the batch's agents
    and the stored ones (one query per such trace; a team creates a handful). A run not stored
    yet adopts it when it comes (_adopt_definitions)."""
    in_batch = [
        (r.at, strong[r.session_id].session_id, r.name)
        for r in agents
        if r.at
        and r.session_id in strong
        and strong[r.session_id].session_id.startswith(AUTOGEN_TEAM_PREFIX)
    ]
    links: dict[str, TraceLinkRecord] = {}
    for record in definitions:
        start = record.defined_at
        if start is None:
            continue
        uses = [
            (at, team)
            for at, team, name in in_batch
            if name == record.defined_agent and start <= at <= start + DEFINITION_WINDOW
        ]
        stored = (
            Agent.objects.filter(
                project=project,
                name=record.defined_agent,
                session__external_id__startswith=AUTOGEN_TEAM_PREFIX,
                created_at__gte=start,
                created_at__lte=start + DEFINITION_WINDOW,
            )
            .order_by("created_at", "pk")
            .values_list("created_at", "session__external_id")
            .first()
        )
        uses += [(stored[0], stored[1])] if stored and stored[0] is not None else []
        if uses:
            team = min(uses)[1]
            reason = _definition_reason(record.defined_agent, team)
            links[record.trace_id] = replace(record, session_id=team, reason=reason)
    return links


def _adopt_definitions(
    project: Project, sessions: dict[str, Session], records: list[AgentRecord]
) -> None:
    """The other order: a team run's agents arrive after their create_agent traces were
    stored as sessions of their own. Each such trace (not linked yet) joins the run whose agent
    of that name starts soonest after it, within DEFINITION_WINDOW."""
    used = [
        (r.name, r.at, r.session_id)
        for r in records
        if r.name and r.at and r.session_id.startswith(AUTOGEN_TEAM_PREFIX)
    ]
    if not used:
        return
    earliest = min(at for _, at, _ in used)
    latest = max(at for _, at, _ in used)
    candidates = (
        Agent.objects.filter(
            project=project,
            name__in={name for name, _, _ in used},
            created_at__gte=earliest - DEFINITION_WINDOW,
            created_at__lte=latest,
            session__external_id__regex=r"^[0-9a-f]{32}$",
            # The orphan-root session is named after its one span (otlp._root_records).
            session__name__startswith="create_agent ",
        )
        .exclude(
            session__external_id__in=TraceLink.objects.filter(project=project).values("trace_id")
        )
        .exclude(session_id__in=[s.pk for s in sessions.values()])
        .select_related("session")
    )
    for definition in candidates:
        uses = sorted(
            (at, team)
            for name, at, team in used
            if name == definition.name
            and definition.created_at is not None
            and definition.created_at <= at <= definition.created_at + DEFINITION_WINDOW
        )
        if not uses:
            continue
        team = sessions[uses[0][1]]
        TraceLink.objects.create(
            project=project,
            trace_id=definition.session.external_id,
            session=team,
            reason=_definition_reason(definition.name, team.external_id),
        )
        _move_trace(definition.session, team)


def _linked(
    project: Project, by_type: dict[type, list[Any]]
) -> tuple[dict[str, TraceLinkRecord], dict[type, list[Any]]]:
    """The batch's trace links by trace id (taken out of `by_type`) and the other records by
    type, pointed at the sessions the links name."""
    links = _batch_links(project, by_type.pop(TraceLinkRecord, []), by_type.get(AgentRecord, []))
    return links, _follow_trace_links(project, by_type, links)


def _follow_trace_links(
    project: Project, by_type: dict[type, list[Any]], links: dict[str, TraceLinkRecord]
) -> dict[type, list[Any]]:
    """Point records of linked OTLP traces at their named session instead of the trace's own.

    A trace's records carry its hex trace id as session id. A TraceLinkRecord in this batch
    (`links`, by trace id), or a TraceLink stored earlier, names the session the trace belongs
    to. Returns the records (by type) with their session ids rewritten.
    """
    trace_ids = {r.session_id for group in by_type.values() for r in group}
    trace_ids = {t for t in trace_ids if len(t) == 32} - links.keys()
    mapping = {trace: link.session_id for trace, link in links.items()}
    if trace_ids:
        mapping |= dict(
            TraceLink.objects.filter(project=project, trace_id__in=trace_ids).values_list(
                "trace_id", "session__external_id"
            )
        )
    if not mapping:
        return by_type
    moved = {
        kind: [
            r if r.session_id not in mapping else with_session_id(r, mapping[r.session_id])
            for r in group
        ]
        for kind, group in by_type.items()
    }
    # An AutoGen agent's create_agent trace does not name the run it joins (created earlier,
    # it would always be the earliest root); stored alone, it names its own session.
    defined = {trace for trace, link in links.items() if link.defined_agent}
    if defined and SessionRecord in moved:
        moved[SessionRecord] = [
            replace(new, name=None, name_at=None) if old.session_id in defined else new
            for old, new in zip(by_type[SessionRecord], moved[SessionRecord], strict=True)
        ]
    return moved


def _save_trace_links(
    project: Project, sessions: dict[str, Session], links: dict[str, TraceLinkRecord]
) -> None:
    """Store the batch's links, and move rows already stored under a trace's own session."""
    if not links:
        return
    traces = sorted(links)
    # Written out (ingest/sql.py), the stored links and the stray sessions in one statement:
    # every request of a session brings its traces' links.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1, trace_id, session_id, round_index, reason FROM ingest_tracelink "
            f"WHERE project_id = %s AND trace_id IN {sql.placeholders(traces)} "
            "UNION ALL SELECT 0, external_id, id, NULL, NULL FROM ingest_session "
            f"WHERE project_id = %s AND external_id IN {sql.placeholders(traces)}",
            [project.pk, *traces, project.pk, *traces],
        )
        rows = cursor.fetchall()
    stored = {tuple(row[1:]) for row in rows if row[0]}
    stray_pks = [row[2] for row in rows if not row[0]]
    # Rewriting an unchanged link would lock it until commit, and every request carrying a
    # span of that trace would queue behind it; links in sorted order against deadlocks.
    changed = [
        TraceLink(
            project=project,
            trace_id=trace,
            session_id=sessions[link.session_id].pk,
            round_index=link.round_index,
            reason=link.reason[:300],
        )
        for trace, link in sorted(links.items())
        if (trace, sessions[link.session_id].pk, link.round_index, link.reason[:300]) not in stored
    ]
    if changed:
        TraceLink.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["project", "trace_id"],
            update_fields=["session", "round_index", "reason"],
        )
    if stray_pks:
        for stray in Session.objects.filter(pk__in=stray_pks).only("pk", "external_id"):
            _move_trace(stray, sessions[links[stray.external_id].session_id])


def _move_trace(stray: Session, target: Session) -> None:
    """Rows of a trace stored before its link arrived move to the linked session."""
    already = target.spans.values("span_id")
    Span.objects.filter(session=stray, span_id__in=already).delete()
    Span.objects.filter(session=stray).update(session=target)
    TranscriptLine.objects.filter(session=stray).update(session=target)
    Agent.objects.filter(session=stray).exclude(
        external_id__in=target.agents.values("external_id")
    ).update(session=target)
    MetricSample.objects.filter(session=stray).update(session=target)
    # Traces that followed the stray trace by a span link follow it into its session.
    TraceLink.objects.filter(session=stray).update(session=target)
    Message.objects.filter(session=stray).exclude(
        message_id__in=target.agent_messages.values("message_id")
    ).update(session=target)
    Workflow.objects.filter(session=stray).exclude(
        workflow_id__in=target.workflows.values("workflow_id")
    ).update(session=target)
    stray.delete()
    Session.objects.filter(pk=target.pk).update(is_summary_stale=True)
