"""Reads of inter-agent messages, dead letters and agents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf, TruncHour

from analytics.anomalies import MESSAGE_HOUR_COLUMNS
from analytics.messaging import (
    EDGE_ROLLUP_COLUMNS,
    FAILURE_STATUSES,
    MESSAGE_EDGE_COLUMNS,
    MESSAGE_EDGE_HOUR_COLUMNS,
    edge_rollups,
    edge_stats,
    edge_stats_from_aggregates,
    merge_edge_rollups,
    whole_hours,
)
from analytics.models import AgentEdgeRollup
from analytics.queries.frames import json_contains_text, receiver_list
from analytics.queries.scope import ProjectScope, newest_first
from analytics.queries.scoped import agents_for_projects
from analytics.span_errors import ERROR_SPANS
from ingest.models import Agent, Message, MessageEvent, Session, Span

MESSAGE_SEQUENCE_COLUMNS = [
    "pk",
    "message_id",
    "sender",
    "receivers",
    "channel",
    "status",
    "started_at",
    "sent_at",
    "delivered_at",
    "received_at",
    "processed_at",
    "delivery_ms",
    "error_type",
    "preview",
]


# Causality walks at most this many generations up and down.
CAUSALITY_DEPTH = 50


def messages_for_projects(projects: ProjectScope) -> QuerySet[Message]:
    """Inter-agent messages, newest first, with `session_external_id` and `project_slug`
    annotated; content (MessageContent) is never loaded."""
    return newest_first(
        Message,
        projects,
        "started_at",
        session_external_id="session__external_id",
        project_slug="project__slug",
    )


def dead_letters_for_projects(projects: ProjectScope) -> QuerySet[Message]:
    """Messages that failed, were dead-lettered or expired (any dead-letter state), newest first."""
    return messages_for_projects(projects).exclude(dead_letter_state="")


def message_with_content(projects: ProjectScope, pk: int) -> Message | None:
    """One visible message with its MessageContent (`body`, or none) and session."""
    messages = messages_for_projects(projects).select_related("body", "session", "project")
    return messages.filter(pk=pk).first()


def message_events(message: Message) -> list[MessageEvent]:
    """The lifecycle records of a message in time order."""
    return list(MessageEvent.objects.filter(message=message).order_by("at", "id"))


def causality_links(message: Message) -> list[tuple[str, str]]:
    """(message_id, causation_id) pairs around one message in its session, one query per
    generation (at most CAUSALITY_DEPTH up and down): what analytics.messaging.causality walks.
    A message without a causation id counts its correlation id (the message it replies to)."""
    session_messages = Message.objects.filter(session_id=message.session_id)
    cause = Coalesce(NullIf(F("causation_id"), Value("")), F("correlation_id"))
    links: dict[str, str] = {message.message_id: message.causation_id or message.correlation_id}
    up = links[message.message_id]
    for _ in range(CAUSALITY_DEPTH):
        if not up or up in links:
            break
        row = (
            session_messages.filter(message_id=up)
            .annotate(cause=cause)
            .values_list("message_id", "cause")
        )
        found = list(row[:1])
        links.update(found)
        up = found[0][1] if found else ""
    frontier = {message.message_id}
    for _ in range(CAUSALITY_DEPTH):
        rows = list(
            session_messages.annotate(cause=cause)
            .filter(cause__in=frontier)
            .exclude(message_id__in=links.keys())
            .values_list("message_id", "cause")[:500]
        )
        if not rows:
            break
        links.update(rows)
        frontier = {child for child, _ in rows}
    return list(links.items())


def messages_by_message_id(session_pk: int, message_ids: Sequence[str]) -> dict[str, Message]:
    """Messages of one session by client message id; one query."""
    rows = Message.objects.filter(session_id=session_pk, message_id__in=set(message_ids))
    return {m.message_id: m for m in rows}


def session_message_count(session: Session) -> int:
    return Message.objects.filter(session=session).count()


def sequence_messages(session: Session, *, offset: int, limit: int) -> list[dict[str, Any]]:
    """A window of the session's messages in time order (MESSAGE_SEQUENCE_COLUMNS dicts)."""
    rows = Message.objects.filter(session=session).order_by("started_at", "id")
    return list(rows.values(*MESSAGE_SEQUENCE_COLUMNS)[offset : offset + limit])


def session_message_times(session: Session) -> list[datetime]:
    """Every message's start in the session, in order: the sequence diagram's overview strip."""
    rows = Message.objects.filter(session=session).order_by("started_at", "id")
    return list(rows.values_list("started_at", flat=True))


def message_edge_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """One row per (message, receiver) for messages started in [since, until):
    analytics.messaging.MESSAGE_EDGE_COLUMNS. No content."""
    rows = Message.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list("sender", "receivers", "status", "delivery_ms")
    exploded = [
        (sender, receiver, status, delivery)
        for sender, receivers, status, delivery in rows.iterator(chunk_size=5000)
        for receiver in (receivers or [""])
    ]
    return pd.DataFrame.from_records(exploded, columns=MESSAGE_EDGE_COLUMNS)


def message_edge_rollup_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """What the hourly edge rollups are built from: one row per (message, receiver) for messages
    started in [since, until), analytics.messaging.MESSAGE_EDGE_HOUR_COLUMNS. No content."""
    rows = Message.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list("started_at", "sender", "receivers", "status", "delivery_ms")
    exploded = [
        (started_at, sender, receiver, status, delivery)
        for started_at, sender, receivers, status, delivery in rows.iterator(chunk_size=5000)
        for receiver in (receivers or [""])
    ]
    return pd.DataFrame.from_records(exploded, columns=MESSAGE_EDGE_HOUR_COLUMNS)


def agent_edge_rollup_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Stored hourly edge rollups of the hours in [since, until): EDGE_ROLLUP_COLUMNS."""
    rows = AgentEdgeRollup.objects.filter(
        project_id=project_id, hour__gte=since, hour__lt=until
    ).values_list(*EDGE_ROLLUP_COLUMNS)
    return pd.DataFrame.from_records(list(rows), columns=EDGE_ROLLUP_COLUMNS)


def message_hour_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """analytics.anomalies.MESSAGE_HOUR_COLUMNS for [since, until): messages (and how many of
    them failed) by the hour they started in, and dead letters by the hour they were
    dead-lettered in, per sender, receiver and error type. Two grouped queries; receivers are
    split in Python over the grouped rows."""
    scope = Message.objects.filter(project_id=project_id).order_by()
    keys = ("bucket", "sender", "receivers", "error_type")
    started = (
        scope.filter(started_at__gte=since, started_at__lt=until)
        .annotate(bucket=TruncHour("started_at"))
        .values(*keys)
        .annotate(messages=Count("pk"), failed=Count("pk", filter=Q(status__in=FAILURE_STATUSES)))
    )
    dead = (
        scope.filter(dead_lettered_at__gte=since, dead_lettered_at__lt=until)
        .annotate(bucket=TruncHour("dead_lettered_at"))
        .values(*keys)
        .annotate(dead_lettered=Count("pk"))
    )
    rows = [
        (
            row["bucket"],
            row["sender"],
            receiver,
            row["error_type"],
            row.get("messages", 0),
            row.get("failed", 0),
            row.get("dead_lettered", 0),
        )
        for query in (started, dead)
        for row in query
        for receiver in receiver_list(row["receivers"])
    ]
    frame = pd.DataFrame.from_records(rows, columns=MESSAGE_HOUR_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def edge_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Sender→receiver edge statistics for messages started in [since, until):
    analytics.messaging.EDGE_COLUMNS. Whole hours come from the hourly edge rollups (so they lag
    ingest by the analytics refresh's debounce) and the partial hours at either end from the
    messages; a range without a whole hour is aggregated from the messages alone."""
    first_hour, end_hour = whole_hours(since, until)
    if first_hour >= end_hour:
        return raw_edge_frame(project_id, since=since, until=until)
    parts = [agent_edge_rollup_frame(project_id, since=first_hour, until=end_hour)]
    for start, end in ((since, first_hour), (end_hour, until)):
        if start < end:
            rows = message_edge_rollup_frame(project_id, since=start, until=end)
            parts.append(edge_rollups(rows))
    parts = [part for part in parts if len(part)]
    if not parts:
        return merge_edge_rollups(pd.DataFrame(columns=EDGE_ROLLUP_COLUMNS))
    return merge_edge_rollups(pd.concat(parts, ignore_index=True))


def raw_edge_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """edge_frame() computed from the messages alone, with exact percentiles. PostgreSQL
    aggregates in the database (one pass over the range, percentiles included); other databases
    read the rows and aggregate in pandas."""
    if connection.vendor != "postgresql":
        return edge_stats(message_edge_frame(project_id, since=since, until=until))
    sql = (
        "SELECT m.sender, r.receiver, count(*) AS messages, "
        "count(*) FILTER (WHERE m.status IN ('failed', 'dead_lettered', 'expired')) AS failed, "
        "percentile_cont(0.95) WITHIN GROUP (ORDER BY m.delivery_ms) AS p95_delivery_ms "
        "FROM ingest_message m CROSS JOIN LATERAL jsonb_array_elements_text("
        "CASE WHEN jsonb_array_length(m.receivers) = 0 THEN '[\"\"]'::jsonb ELSE m.receivers END"
        ") AS r(receiver) "
        "WHERE m.project_id = %s AND m.started_at >= %s AND m.started_at < %s "
        "GROUP BY m.sender, r.receiver"
    )
    # JIT compilation cost ~1 s for this one-pass aggregate (the planner overestimates the
    # lateral receivers 100-fold); without it 24 hours of a 1M-message project take ~70 ms.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [project_id, since, until])
        rows = cursor.fetchall()
    frame = pd.DataFrame.from_records(
        rows, columns=["sender", "receiver", "messages", "failed", "p95_delivery_ms"]
    )
    return edge_stats_from_aggregates(frame)


def dead_letter_pattern_rows(messages: QuerySet[Message]) -> dict[str, list[dict[str, Any]]]:
    """Counts of these dead letters by error type and by (sender, receivers): two queries."""
    plain = messages.order_by()
    by_type = [dict(r) for r in plain.values("error_type").annotate(count=Count("pk"))]
    by_edge = [dict(r) for r in plain.values("sender", "receivers").annotate(count=Count("pk"))]
    return {"error_type": by_type, "edge": by_edge}


def agents_with_traffic(projects: ProjectScope) -> QuerySet[Agent]:
    """Agents (per session), newest first, with the counts the agents page lists: messages sent,
    received and failed (sent, then failed), LLM calls and errors. Subqueries, one query."""
    agents = agents_for_projects(projects).annotate(project_slug=F("project__slug"))
    # OTLP messages name agents by name while OTLP agents are keyed by their span id: match both.
    by_id_or_name = Q(sender=OuterRef("external_id")) | (Q(sender=OuterRef("name")) & ~Q(sender=""))
    sent = Message.objects.filter(by_id_or_name, session=OuterRef("session"))
    spans = Span.objects.filter(
        session=OuterRef("session"), agent_external_id=OuterRef("external_id")
    )
    return agents.annotate(
        sent_count=_count_of(sent),
        failed_count=_count_of(sent.filter(status__in=FAILURE_STATUSES)),
        llm_count=_count_of(spans.filter(kind=Span.Kind.LLM)),
        error_count=_count_of(spans.filter(ERROR_SPANS)),
    )


def _count_of(rows: QuerySet[Any]) -> Any:
    counted = rows.order_by().values("session").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), Value(0))


def agent_for_projects(projects: ProjectScope, pk: int) -> Agent | None:
    return agents_for_projects(projects).select_related("session", "project").filter(pk=pk).first()


def agent_message_counts(agent: Agent) -> dict[str, int]:
    """Messages the agent sent, received and (of those it sent) that failed, in its session.
    Messages name the agent by its id or by its name (OTLP agents are keyed by span id)."""
    names = agent_names(agent)
    messages = Message.objects.filter(session_id=agent.session_id)
    received = messages.filter(received_by(names))
    sent = messages.filter(sender__in=names)
    return {
        "sent": sent.count(),
        "received": received.count(),
        "failed": sent.filter(status__in=FAILURE_STATUSES).count()
        + received.filter(status__in=FAILURE_STATUSES).exclude(sender__in=names).count(),
    }


def agent_names(agent: Agent) -> list[str]:
    """What messages may call the agent: its id and, when it has one, its name."""
    return [agent.external_id, *([agent.name] if agent.name not in ("", agent.external_id) else [])]


def received_by(names: Sequence[str]) -> Q:
    received = Q()
    for name in names:
        received |= json_contains_text("receivers", name)
    return received


def agent_messages(agent: Agent, *, limit: int) -> list[Message]:
    """The agent's messages (sent or received) in its session, newest first."""
    names = agent_names(agent)
    messages = Message.objects.filter(session_id=agent.session_id).filter(
        Q(sender__in=names) | received_by(names)
    )
    messages = messages.annotate(session_external_id=F("session__external_id"))
    return list(messages.order_by("-started_at", "-id")[:limit])


AGENT_SPAN_COLUMNS = [
    "kind",
    "status",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
]


def agent_span_frame(agent: Agent) -> pd.DataFrame:
    """The agent's spans in its session (AGENT_SPAN_COLUMNS), no payloads."""
    rows = Span.objects.filter(
        session_id=agent.session_id, agent_external_id=agent.external_id
    ).values_list(*AGENT_SPAN_COLUMNS)
    return pd.DataFrame.from_records(list(rows), columns=AGENT_SPAN_COLUMNS)


def requeue_webhook_rows(message_pks: Sequence[int]) -> list[dict[str, Any]]:
    """The requeued messages whose project has a webhook URL, oldest requeue first: pk,
    message_id, session_external_id, sender, receivers, channel, requeued_at, project_slug, url,
    secret (the project's signing secret)."""
    rows = Message.objects.filter(pk__in=message_pks).exclude(project__requeue_webhook_url="")
    return [
        dict(row)
        for row in rows.order_by("requeued_at", "id").values(
            "pk",
            "message_id",
            "sender",
            "receivers",
            "channel",
            "requeued_at",
            session_external_id=F("session__external_id"),
            project_slug=F("project__slug"),
            url=F("project__requeue_webhook_url"),
            secret=F("project__requeue_webhook_secret"),
        )
    ]
