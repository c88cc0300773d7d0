"""The read API's scoped lists and details (api/views.py; the dashboard reuses them).

Every selector takes the projects its caller may see, so no read can reach another project's
rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Prefetch, Q, QuerySet
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, Length, Substr

from analytics.queries.frames import rows_frame
from analytics.queries.scope import ProjectScope, newest_first
from analytics.scores import ScoreCondition
from analytics.span_errors import ERROR_SPANS
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import (
    Agent,
    IngestRejection,
    MetricSample,
    Score,
    Session,
    Span,
    TraceLink,
    TranscriptLine,
)


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
    return newest_first(
        Span,
        projects,
        "started_at",
        session_external_id="session__external_id",
        project_slug="project__slug",
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
    rows = TraceLink.objects.filter(session=session).values_list(
        "trace_id", "round_index", "reason"
    )
    links = {trace: index for trace, index, _ in rows}
    reasons = {trace: reason for trace, _, reason in rows}
    if not links:
        return []
    failed = ERROR_SPANS
    stats: dict[str, dict[str, Any]] = {
        row["trace_id"]: dict(row)
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
            "reason": reasons.get(trace_id, ""),
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
    return newest_first(Agent, projects, "created_at", session_external_id="session__external_id")


def metrics_for_projects(projects: ProjectScope) -> QuerySet[MetricSample]:
    """Metric samples, newest first; `session_external_id` is None for project-level samples."""
    return newest_first(MetricSample, projects, "at", session_external_id="session__external_id")


def scores_for_projects(projects: ProjectScope) -> QuerySet[Score]:
    """Scores, newest first, with `session_external_id` (the client's session id)."""
    return newest_first(Score, projects, "created_at", session_external_id="session__external_id")


# For lists that show each session's scores (the sessions API and its CSV): one query a page.
SESSION_SCORES_PREFETCH = Prefetch("scores", queryset=Score.objects.order_by("created_at", "id"))


def scored_sessions_for_projects(projects: ProjectScope) -> QuerySet[Session]:
    """sessions_for_projects() with each session's scores prefetched."""
    return sessions_for_projects(projects).prefetch_related(SESSION_SCORES_PREFETCH)


def scores_for_session(session: Session) -> list[Score]:
    """A session's scores, of the session and of its spans, oldest first."""
    return list(Score.objects.filter(session=session).order_by("created_at", "id"))


def scores_for_span(span: Span) -> list[Score]:
    return list(
        Score.objects.filter(session_id=span.session_id, span_id=span.span_id).order_by(
            "created_at", "id"
        )
    )


def score_names(projects: ProjectScope) -> list[str]:
    """Every score name in these projects, in alphabetical order."""
    rows = Score.objects.filter(project__in=projects).values_list("name", flat=True)
    return sorted(set(rows.distinct()))


def score_matches(condition: ScoreCondition) -> Q:
    """Scores meeting a `?score=` condition (analytics.scores.parse_score_condition)."""
    match = Q(name=condition.name)
    if condition.number is not None:
        lookup = {"eq": "exact", "ne": "exact"}.get(condition.op, condition.op)
        compared = Q(**{f"value__{lookup}": condition.number})
        match &= ~compared & Q(value__isnull=False) if condition.op == "ne" else compared
    elif condition.word:
        same = Q(label__iexact=condition.word)
        match &= ~same if condition.op == "ne" else same
    return match


def sessions_with_score(
    sessions: QuerySet[Session], condition: ScoreCondition
) -> QuerySet[Session]:
    """The sessions with at least one score (of the session or a span) meeting the condition."""
    scored = Score.objects.filter(score_matches(condition), session=OuterRef("pk"))
    return sessions.filter(Exists(scored))


def score_frame(
    project_id: int, *, since: datetime, until: datetime, names: Sequence[str] = ()
) -> pd.DataFrame:
    """Scores given in [since, until) (all names, or these): SCORE_COLUMNS, one row each."""
    rows = Score.objects.filter(project_id=project_id, created_at__gte=since, created_at__lt=until)
    if names:
        rows = rows.filter(name__in=list(names))
    return rows_frame(rows.values_list(*SCORE_COLUMNS), SCORE_COLUMNS)


SCORE_COLUMNS = ("session_id", "name", "data_type", "value", "label", "created_at")


def session_score_frame(session_pks: Sequence[int]) -> pd.DataFrame:
    """The scores of these sessions: SCORE_COLUMNS (for analytics.scores.session_score_digest)."""
    rows = Score.objects.filter(session_id__in=list(session_pks)).values_list(*SCORE_COLUMNS)
    return rows_frame(rows, SCORE_COLUMNS)


def rejections_for_projects(projects: ProjectScope) -> QuerySet[IngestRejection]:
    """Ingest rejections, newest first, without the raw record text (up to a whole body)."""
    return newest_first(
        IngestRejection, projects, "received_at", project_slug="project__slug"
    ).defer("raw")


def rejection_for_projects(projects: ProjectScope, pk: int) -> IngestRejection | None:
    """One ingest rejection with its raw record text, or None if not visible."""
    return (
        IngestRejection.objects.filter(project__in=projects, pk=pk)
        .annotate(project_slug=F("project__slug"))
        .first()
    )


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


def waterfall_spans(
    session: Session, *, limit: int, offset: int = 0, trace_id: str = ""
) -> list[dict[str, Any]]:
    """The session's spans by start time from the `offset`-th, at most `limit` (only trace
    `trace_id`'s when given), as WATERFALL_COLUMNS dicts plus `detailed_kind` (the
    DETAILED_KIND_KEY attribute, or None).

    The payload join reads that one attribute; prompts, completions and params stay unread."""
    spans = _waterfall_scope(session, trace_id).annotate(
        detailed_kind=KeyTextTransform(DETAILED_KIND_KEY, "payload__attributes")
    )
    spans = spans.order_by("started_at", "id")
    return list(spans.values(*WATERFALL_COLUMNS, "detailed_kind")[offset : offset + limit])


def _waterfall_scope(session: Session, trace_id: str) -> QuerySet[Span]:
    spans = Span.objects.filter(session=session)
    return spans.filter(trace_id=trace_id) if trace_id else spans


def stream_lines(
    session: Session,
    *,
    roles: Sequence[str],
    max_chars: int,
    limit: int,
    after: int | None = None,
    before: int | None = None,
) -> list[TranscriptLine]:
    """At most `limit` chat stream lines with these roles, in (`at`, id) order: the first ones
    with ids above `after` (the live poll), else the last ones before line `before` (or the
    end). Each line's text is cut to `max_chars` in SQL (`text_preview`; `text_chars` is its
    full length): a line can be a million characters and the page shows hundreds of lines."""
    lines = (
        transcript_for_session(session, roles=roles)
        .defer("text")
        .annotate(text_preview=Substr("text", 1, max_chars), text_chars=Length("text"))
    )
    if after is not None:
        return list(lines.filter(pk__gt=after)[:limit])
    if before is not None:
        edge = TranscriptLine.objects.filter(session=session, pk=before).values("at").first()
        if edge is not None:
            lines = lines.filter(Q(at__lt=edge["at"]) | Q(at=edge["at"], pk__lt=before))
    return list(reversed(lines.order_by("-at", "-id")[:limit]))


def stream_line_count(session: Session, *, roles: Sequence[str]) -> int:
    """How many chat stream lines with these roles the session has."""
    return TranscriptLine.objects.filter(session=session, role__in=roles).count()


def transcript_line(session: Session, pk: int) -> TranscriptLine | None:
    """One transcript line of the session, whole."""
    return TranscriptLine.objects.filter(session=session, pk=pk).first()


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
