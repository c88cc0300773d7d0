"""Reads for session summaries: what the worker summarises and what is still stale."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection

from analytics.summaries import SESSION_COLUMNS, SPAN_COLUMNS
from ingest.models import Agent, Session, Span


def session_summary_inputs(
    session_pks: list[int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[int, list[str]]]:
    """Spans (analytics.summaries.SPAN_COLUMNS tuples), sessions (SESSION_COLUMNS tuples) and
    agent names for summarising these sessions: three queries, no text."""
    spans = list(Span.objects.filter(session_id__in=session_pks).values_list(*SPAN_COLUMNS))
    sessions = list(Session.objects.filter(pk__in=session_pks).values_list(*SESSION_COLUMNS))
    names: dict[int, list[str]] = {}
    for session_pk, name, external_id in Agent.objects.filter(
        session_id__in=session_pks
    ).values_list("session_id", "name", "external_id"):
        names.setdefault(session_pk, []).append(name or external_id)
    return spans, sessions, names


def stale_session_pks(*, limit: int) -> list[int]:
    """Sessions whose summary is out of date, oldest change first."""
    return list(
        Session.objects.filter(is_summary_stale=True)
        .order_by("updated_at")
        .values_list("pk", flat=True)[:limit]
    )


def session_pks_of_project(project_id: int) -> list[int]:
    sessions = Session.objects.filter(project_id=project_id).order_by("pk")
    return list(sessions.values_list("pk", flat=True))


def stale_summary_count(project_ids: Sequence[int]) -> int:
    """Sessions of these projects whose summary the worker has not rebuilt yet."""
    return Session.objects.filter(project_id__in=project_ids, is_summary_stale=True).count()


def summary_progress(session_pks: Sequence[int]) -> dict[int, tuple[int, int]]:
    """PostgreSQL: per session, the spans its stored summary counted, and the spans it has now
    (counted from an index on the session's spans, no span row read)."""
    pks = list(session_pks)
    if not pks:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, s.event_count, (SELECT count(*) FROM ingest_span sp "
            "WHERE sp.session_id = s.id) FROM ingest_session s WHERE s.id = ANY(%s)",
            [pks],
        )
        return {pk: (summarized, now) for pk, summarized, now in cursor.fetchall()}
