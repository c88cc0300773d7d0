"""Shared reads: ORM to QuerySet or DataFrame. Views, tasks and the API read through here.

The read API's selectors take the projects their caller may see, so no read can reach another
project's rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Length, Substr

from analytics.summaries import SESSION_COLUMNS, SPAN_COLUMNS
from ingest.models import (
    Agent,
    IngestRejection,
    MetricSample,
    Project,
    Session,
    Span,
    TraceLink,
    TranscriptLine,
)

# The attribute in which the OTLP mapper keeps a span's detailed kind (workflow, agent, task…).
DETAILED_KIND_KEY = "observatory.kind"

# --- Session summaries (analytics/tasks.py) -------------------------------------------------


def session_summary_inputs(
    session_pks: list[int],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[int, list[str]]]:
    """Spans, sessions and agent names for summarising these sessions: three queries, no text."""
    spans = pd.DataFrame.from_records(
        list(Span.objects.filter(session_id__in=session_pks).values_list(*SPAN_COLUMNS)),
        columns=SPAN_COLUMNS,
    )
    sessions = pd.DataFrame.from_records(
        list(Session.objects.filter(pk__in=session_pks).values_list(*SESSION_COLUMNS)),
        columns=SESSION_COLUMNS,
    )
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


# --- Read API: scoped lists and details (api/views.py; the dashboard may reuse them) ---------

# A caller's visible projects: a Project QuerySet (used as a subquery) or a list of ids.
ProjectScope = QuerySet[Project] | Sequence[int]


def projects_for_user(user: Any) -> QuerySet[Project]:
    """Projects the user is a member of. Superusers get no implicit access; anonymous gets none."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return Project.objects.none()
    return Project.objects.filter(membership__user=user)


def project_list(projects: ProjectScope) -> QuerySet[Project]:
    """The visible projects, ordered by slug."""
    return Project.objects.filter(pk__in=projects).order_by("slug", "id")


def sessions_for_projects(projects: ProjectScope) -> QuerySet[Session]:
    """Sessions, newest first (ties by id), with their project joined for its slug."""
    return (
        Session.objects.filter(project__in=projects)
        .select_related("project")
        .order_by("-started_at", "-id")
    )


def sessions_with_external_id(projects: ProjectScope, external_id: str) -> QuerySet[Session]:
    """The sessions a client id names; more than one when the id is reused across projects."""
    return sessions_for_projects(projects).filter(external_id=external_id)


def spans_for_projects(projects: ProjectScope) -> QuerySet[Span]:
    """Spans (events), newest first, WITHOUT their payload: list queries never load big text.

    Each row carries `session_external_id` and `project_slug` as annotations (no joined rows).
    """
    return (
        Span.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"), project_slug=F("project__slug"))
        .order_by("-started_at", "-id")
    )


def span_with_payload(projects: ProjectScope, pk: int) -> Span | None:
    """One span with its SpanPayload (the detail view's big text), or None if not visible."""
    return spans_for_projects(projects).select_related("payload").filter(pk=pk).first()


def transcript_for_session(
    session: Session, *, roles: Sequence[str] | None = None
) -> QuerySet[TranscriptLine]:
    """A session's chat stream in order (`at`, then id); only `roles` when given."""
    lines = TranscriptLine.objects.filter(session=session).annotate(
        session_external_id=F("session__external_id")
    )
    if roles is not None:
        lines = lines.filter(role__in=roles)
    return lines.order_by("at", "id")


def status_lines_for_projects(projects: ProjectScope) -> QuerySet[TranscriptLine]:
    """Transcript lines with a status role (agent, llm, tool, log), newest first."""
    return (
        TranscriptLine.objects.filter(project__in=projects, role__in=TranscriptLine.STATUS_ROLES)
        .annotate(session_external_id=F("session__external_id"))
        .order_by("-at", "-id")
    )


def session_for_trace(projects: ProjectScope, trace_id: str) -> Session | None:
    """The visible session a hex trace id names: its own session (external id = trace id) or the
    session a TraceLink puts the trace in; newest first if several. One query."""
    linked = TraceLink.objects.filter(session=OuterRef("pk"), trace_id=trace_id)
    sessions = sessions_for_projects(projects).filter(Q(external_id=trace_id) | Q(Exists(linked)))
    return sessions.first()


def session_rounds(session: Session) -> list[dict[str, Any]]:
    """The traces of a multi-trace session as rounds, in order: round_index (missing last), then
    the trace's first span start. Each dict holds trace_id, round_index, started_at, ended_at,
    span_count and error_count. A trace with spans but no TraceLink is a round without an index.
    Empty when the session has no TraceLink. Two queries, however many rounds."""
    links = dict(TraceLink.objects.filter(session=session).values_list("trace_id", "round_index"))
    if not links:
        return []
    failed = Q(status=Span.Status.ERROR) | Q(kind=Span.Kind.ERROR)
    stats = {
        row["trace_id"]: row
        for row in Span.objects.filter(session=session)
        .exclude(trace_id="")
        .values("trace_id")
        .annotate(
            first_start=Min("started_at"),
            last_end=Max(Coalesce("ended_at", "started_at")),
            span_count=Count("pk"),
            error_count=Count("pk", filter=failed),
        )
        .order_by()
    }
    rounds = [
        {
            "trace_id": trace_id,
            "round_index": links.get(trace_id),
            "started_at": stats.get(trace_id, {}).get("first_start"),
            "ended_at": stats.get(trace_id, {}).get("last_end"),
            "span_count": stats.get(trace_id, {}).get("span_count", 0),
            "error_count": stats.get(trace_id, {}).get("error_count", 0),
        }
        for trace_id in sorted(links.keys() | stats.keys())
    ]
    return sorted(rounds, key=_round_order)


def _round_order(row: dict[str, Any]) -> tuple[bool, int, bool, datetime | None]:
    index, started = row["round_index"], row["started_at"]
    # A missing start sorts last; `started is None` decides first, so None never meets a datetime.
    return (index is None, index or 0, started is None, started)


def agents_for_projects(projects: ProjectScope) -> QuerySet[Agent]:
    """Agents as they lived in each session, newest first."""
    return (
        Agent.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"))
        .order_by("-created_at", "-id")
    )


def metrics_for_projects(projects: ProjectScope) -> QuerySet[MetricSample]:
    """Metric samples, newest first; `session_external_id` is None for project-level samples."""
    return (
        MetricSample.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"))
        .order_by("-at", "-id")
    )


def rejections_for_projects(projects: ProjectScope) -> QuerySet[IngestRejection]:
    """Ingest rejections, newest first, without the raw record text (up to a whole body)."""
    return (
        IngestRejection.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .defer("raw")
        .order_by("-received_at", "-id")
    )


def rejection_for_projects(projects: ProjectScope, pk: int) -> IngestRejection | None:
    """One ingest rejection with its raw record text, or None if not visible."""
    return (
        IngestRejection.objects.filter(project__in=projects, pk=pk)
        .annotate(project_slug=F("project__slug"))
        .first()
    )


# Dashboard reads


OVERVIEW_SESSION_COLUMNS = ["started_at", "end_state"]
OVERVIEW_EVENT_COLUMNS = [
    "started_at",
    "kind",
    "status",
    "model",
    "duration_ms",
    "prompt_tokens",
    "completion_tokens",
    "cost",
]
WATERFALL_COLUMNS = [
    "pk",
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "status",
    "model",
    "started_at",
    "ended_at",
    "duration_ms",
    "trace_id",
]


def overview_session_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Sessions started in [since, until): OVERVIEW_SESSION_COLUMNS, one row each."""
    rows = Session.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*OVERVIEW_SESSION_COLUMNS)
    return pd.DataFrame.from_records(list(rows), columns=OVERVIEW_SESSION_COLUMNS)


def overview_event_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Spans started in [since, until): OVERVIEW_EVENT_COLUMNS, one row each, no payload."""
    rows = Span.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*OVERVIEW_EVENT_COLUMNS)
    return pd.DataFrame.from_records(list(rows), columns=OVERVIEW_EVENT_COLUMNS)


def waterfall_spans(session: Session, *, limit: int, trace_id: str = "") -> list[dict[str, Any]]:
    """The session's first `limit` spans by start time (only trace `trace_id`'s when given), as
    WATERFALL_COLUMNS dicts plus `detailed_kind` (the DETAILED_KIND_KEY attribute, or None).

    The payload join reads that one attribute; prompts, completions and params stay unread."""
    spans = Span.objects.filter(session=session)
    if trace_id:
        spans = spans.filter(trace_id=trace_id)
    spans = spans.annotate(
        detailed_kind=KeyTextTransform(DETAILED_KIND_KEY, "payload__attributes")
    ).order_by("started_at", "id")
    return list(spans.values(*WATERFALL_COLUMNS, "detailed_kind")[:limit])


def stream_lines(
    session: Session, *, roles: Sequence[str], after: int | None = None
) -> QuerySet[TranscriptLine]:
    """Chat stream lines with these roles in (`at`, id) order; only ids above `after` if given."""
    lines = transcript_for_session(session, roles=roles)
    return lines if after is None else lines.filter(pk__gt=after)


def session_pks_by_external_id(project_id: int, external_ids: Sequence[str]) -> dict[str, int]:
    """Map client session ids to pks within one project (to link parents); one query."""
    rows = Session.objects.filter(project_id=project_id, external_id__in=set(external_ids))
    return dict(rows.values_list("external_id", "pk"))


def child_sessions(session: Session, *, limit: int) -> list[Session]:
    """Sessions that name this one as their parent, oldest first."""
    children = Session.objects.filter(
        project_id=session.project_id, parent_external_id=session.external_id
    )
    return list(children.order_by("started_at", "id")[:limit])


# Rejected records longer than this are shown truncated and replayed as stored, not edited inline.
REJECTION_EDITABLE_CHARS = 20_000


def rejections_with_raw_head(
    project_id: int, *, resolved: bool | None
) -> QuerySet[IngestRejection]:
    """A project's ingest rejections, newest first, with `raw_head` (the first
    REJECTION_EDITABLE_CHARS characters of the raw record) and `raw_chars` instead of `raw`, which
    can be a whole refused body. `resolved` None means both states."""
    rejections = IngestRejection.objects.filter(project_id=project_id)
    if resolved is not None:
        rejections = rejections.filter(is_resolved=resolved)
    return (
        rejections.defer("raw")
        .annotate(raw_head=Substr("raw", 1, REJECTION_EDITABLE_CHARS), raw_chars=Length("raw"))
        .order_by("-received_at", "-id")
    )


def rejections_by_pk(projects: ProjectScope, pks: Sequence[int]) -> QuerySet[IngestRejection]:
    """The visible rejections among `pks`, with their raw text, oldest first (replay order)."""
    return IngestRejection.objects.filter(project__in=projects, pk__in=pks).order_by(
        "received_at", "id"
    )
