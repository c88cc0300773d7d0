"""Shared reads: ORM to QuerySet or DataFrame. Views, tasks and the API read through here.

The read API's selectors take the projects their caller may see, so no read can reach another
project's rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import pandas as pd
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
)
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Coalesce, Length, NullIf, Substr, TruncHour

from analytics.agent_names import (
    AGENT_ROLLUP_COLUMNS,
    INSTANCE_COLUMNS,
    SENT_COLUMNS,
    TOTAL_COLUMNS,
    activity_totals,
    agent_activity,
    agent_name_stats,
    name_of_id,
    rollup_window,
)
from analytics.anomalies import EDGE_ARROW, MESSAGE_HOUR_COLUMNS, MESSAGE_METRICS
from analytics.clusters import ERROR_SPAN_COLUMNS
from analytics.cohorts import COHORT_SESSION_COLUMNS
from analytics.coverage import COVERAGE_COLUMNS
from analytics.coverage import KINDS as COVERAGE_KINDS
from analytics.detectors import (
    DETECTOR_LINE_COLUMNS,
    DETECTOR_MESSAGE_COLUMNS,
    DETECTOR_SPAN_COLUMNS,
    LLM_CALL_COLUMNS,
    answered_sessions,
)
from analytics.flakiness import FLAKY_COLUMNS
from analytics.incidents import FlagFacts
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
from analytics.models import (
    AgentEdgeRollup,
    AgentNameRollup,
    AlertEvent,
    AlertRule,
    Anomaly,
    ErrorCluster,
    ErrorClusterDay,
    Incident,
    NamedRollup,
    PendingRefresh,
    Report,
    ReportSchedule,
    Rollup,
    SessionFlag,
    StoredDurationRegression,
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestCoverageItem,
    TestDurationDay,
    TestPassRateDay,
    TestTierReliability,
)
from analytics.regressions import DURATION_COLUMNS, REGRESSION_COLUMNS
from analytics.scores import ScoreCondition
from analytics.session_comparison import (
    MessageItem,
    SessionComparison,
    Totals,
    compare_sessions,
    preview_text,
)
from analytics.session_comparison import Step as ComparedStep
from analytics.span_errors import ERROR_SPANS
from analytics.summaries import SESSION_COLUMNS, SPAN_COLUMNS
from analytics.testruns import RESULT_COLUMNS as TEST_RESULT_COLUMNS
from analytics.trends import PERCENTILE_COLUMNS, ROLLUP_COLUMNS, SUM_COLUMNS
from analytics.trends import SESSION_COLUMNS as ROLLUP_SESSION_COLUMNS
from analytics.trends import SPAN_COLUMNS as ROLLUP_SPAN_COLUMNS
from analytics.workflows import RUN_COLUMNS as WORKFLOW_RUN_COLUMNS
from analytics.workflows import STEP_COLUMNS as WORKFLOW_STEP_COLUMNS
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import (
    Agent,
    IngestRejection,
    Message,
    MessageEvent,
    MetricSample,
    Project,
    Score,
    Session,
    Span,
    Step,
    TestResult,
    TestRun,
    TraceLink,
    TranscriptLine,
    Workflow,
)

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
    rows = TraceLink.objects.filter(session=session).values_list(
        "trace_id", "round_index", "reason"
    )
    links = {trace: index for trace, index, _ in rows}
    reasons = {trace: reason for trace, _, reason in rows}
    if not links:
        return []
    failed = ERROR_SPANS
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


def scores_for_projects(projects: ProjectScope) -> QuerySet[Score]:
    """Scores, newest first, with `session_external_id` (the client's session id)."""
    return (
        Score.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"))
        .order_by("-created_at", "-id")
    )


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
    return _frame(rows.values_list(*SCORE_COLUMNS), SCORE_COLUMNS)


SCORE_COLUMNS = ("session_id", "name", "data_type", "value", "label", "created_at")


def session_score_frame(session_pks: Sequence[int]) -> pd.DataFrame:
    """The scores of these sessions: SCORE_COLUMNS (for analytics.scores.session_score_digest)."""
    rows = Score.objects.filter(session_id__in=list(session_pks)).values_list(*SCORE_COLUMNS)
    return _frame(rows, SCORE_COLUMNS)


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


# --- Analytics engine: rollups, anomalies, detectors, clusters, alerts (analytics/refresh.py) ---


def _frame(rows: Any, columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=list(columns))


def _histogram_frame(rows: QuerySet[Any], fields: Sequence[str]) -> pd.DataFrame:
    """rows.values_list(*fields) as a DataFrame, `latency_histogram` read as text and parsed by
    orjson: the JSON field's json.loads was a quarter of the overview's and trends' CPU (a
    rollup's histogram holds tens of bins)."""
    names = ["histogram_text" if field == "latency_histogram" else field for field in fields]
    rows = rows.annotate(histogram_text=Cast("latency_histogram", TextField()))
    frame = _frame(rows.values_list(*names), fields)
    frame["latency_histogram"] = [
        orjson.loads(text) if text else {} for text in frame["latency_histogram"]
    ]
    return frame


def rollup_span_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Spans started in [since, until): analytics.trends.SPAN_COLUMNS, no payload."""
    rows = Span.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*ROLLUP_SPAN_COLUMNS)
    return _frame(rows.iterator(chunk_size=20_000), ROLLUP_SPAN_COLUMNS)


def rollup_session_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Sessions started in [since, until): analytics.trends.SESSION_COLUMNS, with message_count
    (user and assistant lines) from one correlated subquery."""
    messages = (
        TranscriptLine.objects.filter(
            session=OuterRef("pk"),
            role__in=(TranscriptLine.Role.USER, TranscriptLine.Role.ASSISTANT),
        )
        .order_by()
        .values("session")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        Session.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
        .annotate(message_count=Coalesce(Subquery(messages), 0))
        .values_list(*ROLLUP_SESSION_COLUMNS)
    )
    return _frame(rows, ROLLUP_SESSION_COLUMNS)


def rollup_frame(
    project_id: int, *, granularity: str, since: datetime, until: datetime, named: bool = False
) -> pd.DataFrame:
    """Stored rollups with bucket_start in [since, until) as analytics.trends.ROLLUP_COLUMNS; with
    `named` the NamedRollup rows (agents by name), a few per hour however many sessions ran."""
    fields = ["bucket_start", *ROLLUP_COLUMNS[1:]]
    table = NamedRollup if named else Rollup
    rows = table.objects.filter(
        project_id=project_id,
        granularity=granularity,
        bucket_start__gte=since,
        bucket_start__lt=until,
    )
    frame = _histogram_frame(rows, fields).rename(columns={"bucket_start": "bucket"})
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def rolled_up_until(project_id: int) -> datetime | None:
    """The end of the newest hour the refresh has rolled up (NamedRollup), or None."""
    last = (
        NamedRollup.objects.filter(project_id=project_id, granularity=Rollup.Granularity.HOUR)
        .order_by("-bucket_start")
        .values_list("bucket_start", flat=True)
        .first()
    )
    return None if last is None else last + timedelta(hours=1)


def window_rollup_frames(
    project_id: int, *, since: datetime, until: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What a page needs to sum [since, until) without reading every span: the stored hourly
    NamedRollup rows of the whole hours the refresh has rolled up, and the spans and sessions
    (rollup_span_frame, rollup_session_frame columns) of the rest: the part hour at the start
    and the hours after the last refresh (all of the window when nothing is rolled up yet)."""
    rolled = rolled_up_until(project_id)
    first = floor_hour(since) + (timedelta(hours=1) if since != floor_hour(since) else timedelta())
    last = min(rolled, floor_hour(until)) if rolled else first
    if last <= first:
        first = last = since
    stored = _window_rollups(project_id, since=first, until=last)
    raw = [(since, first), (last, until)]
    spans = pd.concat(
        [rollup_span_frame(project_id, since=a, until=b) for a, b in raw if a < b]
        or [_frame([], ROLLUP_SPAN_COLUMNS)],
        ignore_index=True,
    )
    sessions = pd.concat(
        [rollup_session_frame(project_id, since=a, until=b) for a, b in raw if a < b]
        or [_frame([], ROLLUP_SESSION_COLUMNS)],
        ignore_index=True,
    )
    return stored, spans, sessions


def _window_rollups(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Hourly NamedRollup rows in [since, until) as ROLLUP_COLUMNS, with only what the overview
    sums: LLM rows as stored (their histograms merge into latency percentiles), the other kinds
    summed per hour, kind and model in the database (no agent, tool or histogram)."""
    rows = NamedRollup.objects.filter(
        project_id=project_id,
        granularity=Rollup.Granularity.HOUR,
        bucket_start__gte=since,
        bucket_start__lt=until,
    )
    llm = _histogram_frame(rows.filter(kind="llm"), ["bucket_start", *ROLLUP_COLUMNS[1:]])
    sums = (
        rows.exclude(kind="llm")
        .values("bucket_start", "kind", "model")
        .order_by()
        .annotate(**{column: Sum(column) for column in SUM_COLUMNS})
        .values_list("bucket_start", "kind", "model", *SUM_COLUMNS)
    )
    summed = _frame(sums, ["bucket_start", "kind", "model", *SUM_COLUMNS]).assign(
        agent="", tool="", **dict.fromkeys(PERCENTILE_COLUMNS, float("nan"))
    )
    summed["latency_histogram"] = [{} for _ in range(len(summed))]
    frame = pd.concat([llm, summed], ignore_index=True)
    frame = frame.rename(columns={"bucket_start": "bucket"})[ROLLUP_COLUMNS]
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def floor_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def agent_names_by_id(project_id: int, *, since: datetime, until: datetime) -> dict[str, str]:
    """The name of each agent id of the sessions started in [since, until) (an OTLP or
    agentops agent id is one instance in one session) that has a name; one query."""
    rows = (
        Agent.objects.filter(
            session__project_id=project_id,
            session__started_at__gte=since,
            session__started_at__lt=until,
        )
        .exclude(name="")
        .values_list("external_id", "name")
        .distinct()
    )
    return dict(rows.iterator(chunk_size=20_000))


def rollups_for_projects(projects: ProjectScope) -> QuerySet[Rollup]:
    """Stored rollups, newest bucket first, without their histograms."""
    return (
        Rollup.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .defer("latency_histogram")
        .order_by("-bucket_start", "-id")
    )


def metric_sample_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Metric samples taken in [since, until): columns at, name, value, agent_external_id."""
    columns = ["at", "name", "value", "agent_external_id"]
    rows = MetricSample.objects.filter(
        project_id=project_id, at__gte=since, at__lt=until
    ).values_list(*columns)
    return _frame(rows, columns)


def span_time_bounds(project_id: int) -> tuple[datetime | None, datetime | None]:
    """The first and last span start of a project (None, None when it has no spans)."""
    bounds = Span.objects.filter(project_id=project_id).aggregate(
        first=Min("started_at"), last=Max("started_at")
    )
    return bounds["first"], bounds["last"]


def first_message_start(project_id: int) -> datetime | None:
    """The earliest message start of a project (None when it has no messages)."""
    return Message.objects.filter(project_id=project_id).aggregate(first=Min("started_at"))["first"]


def session_project_starts(session_pks: Sequence[int]) -> dict[int, datetime]:
    """The earliest start among these sessions, per project: where their data begins."""
    rows = (
        Session.objects.filter(pk__in=session_pks)
        .values("project_id")
        .annotate(first=Min(Coalesce("started_at", "updated_at")))
        .order_by()
    )
    return {row["project_id"]: row["first"] for row in rows}


def projects_with_pending_refresh(*, scheduled_before: datetime) -> list[int]:
    """Projects with derived data to refresh and no refresh queued since `scheduled_before`."""
    pending = PendingRefresh.objects.filter(
        Q(dirty_from__isnull=False) | Q(unjudged_from__isnull=False)
    ).filter(Q(is_scheduled=False) | Q(updated_at__lt=scheduled_before))
    return list(pending.values_list("project_id", flat=True))


def project_ids() -> list[int]:
    return list(Project.objects.order_by("pk").values_list("pk", flat=True))


def example_session_pks(
    project_id: int,
    *,
    subject_type: str,
    subject: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int = 3,
) -> list[int]:
    """Sessions that show an anomaly best: the slowest, erroring or biggest calls of the subject in
    the window (the costliest sessions for a project-wide cost anomaly; the sessions of the
    failed or dead-lettered messages for a message anomaly). Distinct, worst first."""
    if metric in MESSAGE_METRICS:
        return _message_example_session_pks(
            project_id,
            subject_type=subject_type,
            subject=subject,
            metric=metric,
            since=since,
            until=until,
            limit=limit,
        )
    if metric == "score_mean":
        lowest = Score.objects.filter(
            project_id=project_id,
            name=subject,
            created_at__gte=since,
            created_at__lt=until,
            value__isnull=False,
        ).order_by("value", "pk")
        return list(dict.fromkeys(lowest.values_list("session_id", flat=True)[: limit * 10]))[
            :limit
        ]
    if metric == "cost_per_session":
        sessions = Session.objects.filter(
            project_id=project_id, started_at__gte=since, started_at__lt=until
        ).order_by("-cost", "pk")
        return list(sessions.values_list("pk", flat=True)[:limit])
    spans = Span.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
    spans = spans.filter(**_subject_filter(subject_type, subject, metric))
    if subject_type == "agent":
        # Flags name an agent by name (agent_names_by_id); its spans carry instance ids.
        ids = Agent.objects.filter(session__project_id=project_id, name=subject)
        spans = spans.filter(
            Q(agent_external_id=subject) | Q(agent_external_id__in=ids.values("external_id"))
        )
    if metric == "error_rate":
        spans = spans.filter(ERROR_SPANS).order_by("-started_at")
    elif metric == "tokens_per_call":
        spans = spans.annotate(
            tokens=Coalesce("prompt_tokens", 0) + Coalesce("completion_tokens", 0)
        ).order_by("-tokens")
    else:
        spans = spans.exclude(duration_ms__isnull=True).order_by("-duration_ms")
    found: list[int] = []
    for session_pk in spans.values_list("session_id", flat=True)[: limit * 20]:
        if session_pk not in found:
            found.append(session_pk)
        if len(found) == limit:
            break
    return found


def _message_example_session_pks(
    project_id: int,
    *,
    subject_type: str,
    subject: str,
    metric: str,
    since: datetime,
    until: datetime,
    limit: int,
) -> list[int]:
    """The sessions of the newest failed messages of an edge, or of the newest dead letters of
    an agent (the project), in the window (see analytics.anomalies.detect_message_anomalies)."""
    messages = Message.objects.filter(project_id=project_id)
    if metric == "message_failure_rate":
        messages = messages.filter(
            started_at__gte=since, started_at__lt=until, status__in=FAILURE_STATUSES
        )
    else:
        messages = messages.filter(dead_lettered_at__gte=since, dead_lettered_at__lt=until)
    if subject_type == "edge":
        sender, _, receiver = subject.partition(EDGE_ARROW)
        messages = messages.filter(sender="" if sender == "?" else sender)
        if receiver != "?":
            messages = messages.filter(json_contains_text("receivers", receiver))
    elif subject_type == "agent":
        messages = messages.filter(sender="" if subject == "?" else subject)
    found: list[int] = []
    for session_pk in messages.order_by("-started_at").values_list("session_id", flat=True)[
        : limit * 20
    ]:
        if session_pk not in found:
            found.append(session_pk)
        if len(found) == limit:
            break
    return found


def _subject_filter(subject_type: str, subject: str, metric: str) -> dict[str, str]:
    """The spans an anomaly's series was computed from (see analytics.anomalies.SERIES)."""
    kinds = {"tool": Span.Kind.TOOL, "model": Span.Kind.LLM}
    where: dict[str, str] = {}
    if subject_type == "agent":
        if metric != "error_rate":
            where["kind"] = Span.Kind.LLM
    elif subject_type == "tool":
        where["name"] = subject
    elif subject_type == "model":
        where["model"] = subject
    if subject_type in kinds:
        where["kind"] = kinds[subject_type]
    return where


def anomalies_for_projects(projects: ProjectScope) -> QuerySet[Anomaly]:
    """Anomaly flags, newest window first."""
    return (
        Anomaly.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .order_by("-window_start", "-id")
    )


def incident_flag_facts(project_id: int, *, since: datetime) -> list[FlagFacts]:
    """The flags to regroup after judging the hours from `since`: those ending after it, and
    every other flag of the incidents they belong to (two queries)."""
    recent = Anomaly.objects.filter(project_id=project_id, window_end__gte=since)
    incidents = recent.exclude(incident__isnull=True).values("incident_id")
    rows = Anomaly.objects.filter(
        Q(pk__in=recent.values("pk")) | Q(incident_id__in=incidents), project_id=project_id
    ).values_list(
        "pk",
        "subject_type",
        "subject",
        "metric",
        "window_start",
        "window_end",
        "observed",
        "baseline",
        "score",
        "top_dimension",
        "explanation",
        "example_session_ids",
        "incident_id",
    )
    return [
        FlagFacts(*row[:11], example_session_ids=tuple(row[11] or ()), incident_key=row[12])
        for row in rows
    ]


def incidents_for_projects(projects: ProjectScope) -> QuerySet[Incident]:
    """Incidents, newest first, each with its project's slug and its flags' pks (prefetched:
    one more query a page)."""
    return (
        Incident.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .prefetch_related(Prefetch("anomalies", queryset=Anomaly.objects.only("pk", "incident")))
        .order_by("-window_start", "-id")
    )


def anomalies_of_incidents(incident_pks: Sequence[int]) -> dict[int, list[Anomaly]]:
    """The flags of these incidents, by incident pk, highest score first; one query."""
    found: dict[int, list[Anomaly]] = {pk: [] for pk in incident_pks}
    for anomaly in Anomaly.objects.filter(incident_id__in=incident_pks).order_by("-score", "pk"):
        found[anomaly.incident_id or 0].append(anomaly)
    return found


def new_incident_explanations(project_id: int, *, since: datetime, metric: str) -> list[str]:
    """Explanations of incidents first found since `since` (with a flag of `metric` unless
    empty): an incident that grows is not new again, so it alerts once."""
    incidents = Incident.objects.filter(project_id=project_id, opened_at__gte=since)
    if metric:
        incidents = incidents.filter(anomalies__metric=metric).distinct()
    return list(incidents.order_by("opened_at", "pk").values_list("explanation", flat=True))


def anomaly_for_projects(projects: ProjectScope, pk: int) -> Anomaly | None:
    return Anomaly.objects.filter(project__in=projects, pk=pk).first()


# --- Comparing two sessions (dashboard/views_compare.py, api/views_compare.py) ---------------

# A prompt or output is shown on the comparison by its first characters.
COMPARISON_PREVIEW_CHARS = 300


def comparison_steps(session: Session, *, limit: int) -> list[ComparedStep]:
    """The session's first `limit` spans in start order as comparison steps, in one query.

    Reads each span's prompt or params and completion or returns to digest and preview them
    (never kept whole), and the detailed kind from its attributes.
    """
    rows = (
        Span.objects.filter(session=session)
        .annotate(detailed_kind=KeyTextTransform(DETAILED_KIND_KEY, "payload__attributes"))
        .order_by("started_at", "id")
        .values_list(
            "pk",
            "kind",
            "detailed_kind",
            "name",
            "model",
            "status",
            "error_type",
            "error_message",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "duration_ms",
            "payload__prompt",
            "payload__params",
            "payload__completion",
            "payload__returns",
        )[:limit]
    )
    return [_compared_step(row) for row in rows]


def _compared_step(row: tuple[Any, ...]) -> ComparedStep:
    pk, kind, detailed, name, model, status, error_type, error_message, *numbers = row
    prompt_tokens, completion_tokens, cost, duration_ms, prompt, params, completion, returns = (
        numbers
    )
    given = prompt if prompt is not None else params
    said = completion if completion is not None else returns
    return ComparedStep(
        pk=pk,
        kind=detailed or kind,
        name=name,
        model=model,
        status=status,
        error=": ".join(part for part in (error_type, error_message) if part),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        duration_ms=duration_ms,
        prompt_digest=_digest(given),
        output_digest=_digest(said),
        prompt_preview=preview_text(given, max_chars=COMPARISON_PREVIEW_CHARS),
        output_preview=preview_text(said, max_chars=COMPARISON_PREVIEW_CHARS),
    )


def comparison_messages(session: Session, *, limit: int) -> list[MessageItem]:
    """The session's first `limit` messages in time order, sender and receivers by agent name
    (agent ids are new in every session, names are not); two queries."""
    names = dict(
        Agent.objects.filter(session=session).exclude(name="").values_list("external_id", "name")
    )
    rows = (
        Message.objects.filter(session=session)
        .order_by("started_at", "id")
        .values_list("pk", "sender", "receivers", "channel", "status", "preview")[:limit]
    )
    return [
        MessageItem(
            pk=pk,
            sender=names.get(sender, sender),
            receivers=tuple(names.get(r, r) for r in _receiver_list(receivers)),
            channel=channel,
            status=status,
            preview=preview,
        )
        for pk, sender, receivers, channel, status, preview in rows
    ]


def session_comparison(a: Session, b: Session, *, step_limit: int) -> SessionComparison:
    """Sessions A and B compared (analytics/session_comparison.py): their first `step_limit`
    steps and messages each, and their summary totals; six queries."""
    return compare_sessions(
        (comparison_steps(a, limit=step_limit + 1), comparison_steps(b, limit=step_limit + 1)),
        (
            comparison_messages(a, limit=step_limit + 1),
            comparison_messages(b, limit=step_limit + 1),
        ),
        (_session_totals(a), _session_totals(b)),
        step_limit=step_limit,
    )


def _session_totals(session: Session) -> Totals:
    return Totals(
        duration_ms=session.duration_ms,
        tokens=session.prompt_tokens + session.completion_tokens,
        cost=session.cost,
        errors=session.error_count,
        steps=session.event_count,
    )


def sessions_named_like(session: Session, *, limit: int) -> list[Session]:
    """Other sessions of the session's project with its name (newest first): what it is
    usually compared with. None when it has no name."""
    if not session.name:
        return []
    others = Session.objects.filter(project_id=session.project_id, name=session.name)
    return list(others.exclude(pk=session.pk).order_by("-started_at", "-id")[:limit])


def sessions_of_same_test(session: Session, *, limit: int) -> tuple[str, list[dict[str, Any]]]:
    """(test id, other runs) when a test result names this session: the newest `limit` other
    results of that test that name a received session, as dicts of `session`, `outcome`,
    `commit`, `branch` and `run_started_at`. ("", []) when no test produced it; three queries."""
    test_id = (
        TestResult.objects.filter(project_id=session.project_id)
        .filter(json_contains_text("session_ids", session.external_id))
        .values_list("test_id", flat=True)
        .first()
    )
    if test_id is None:
        return "", []
    results = list(
        TestResult.objects.filter(project_id=session.project_id, test_id=test_id)
        .exclude(session_ids=[])
        .order_by("-run__started_at", "-pk")
        .values("session_ids", "outcome", "run__commit", "run__branch", "run__started_at")[
            : limit + 1
        ]
    )
    first_ids = [row["session_ids"][0] for row in results if row["session_ids"]]
    found = Session.objects.filter(project_id=session.project_id, external_id__in=first_ids)
    by_id = {s.external_id: s for s in found.exclude(pk=session.pk)}
    runs = [
        {
            "session": by_id[row["session_ids"][0]],
            "outcome": row["outcome"],
            "commit": row["run__commit"],
            "branch": row["run__branch"],
            "run_started_at": row["run__started_at"],
        }
        for row in results
        if row["session_ids"] and row["session_ids"][0] in by_id
    ]
    return test_id, runs[:limit]


def last_passing_result(result: TestResult) -> TestResult | None:
    """The newest passing result of the same test on the same branch, in a run that started
    before this result's run: the "last pass" a failing result is compared with."""
    earlier = TestResult.objects.filter(
        project_id=result.project_id,
        test_id=result.test_id,
        outcome=TestResult.Outcome.PASS,
        run__branch=result.run.branch,
    ).exclude(pk=result.pk)
    if result.run.started_at is not None:
        earlier = earlier.filter(run__started_at__lt=result.run.started_at)
    return earlier.select_related("run").order_by("-run__started_at", "-pk").first()


def results_with_sessions(result_pks: Sequence[int]) -> set[int]:
    """Which of these test results name at least one agent session; one query."""
    rows = TestResult.objects.filter(pk__in=result_pks).values_list("pk", "session_ids")
    return {pk for pk, session_ids in rows if session_ids}


def sessions_by_pk(pks: Sequence[int]) -> dict[int, Session]:
    """Sessions (id, external id, name) by pk, to show an anomaly's examples; one query."""
    rows = Session.objects.filter(pk__in=pks).only("pk", "external_id", "name", "project_id")
    return {session.pk: session for session in rows}


def detector_inputs(
    session_pks: Sequence[int],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What the failure detectors read for these sessions, in five queries.

    spans: DETECTOR_SPAN_COLUMNS plus `args_hash` and `prompt_hash`, digests of the span's params
    and prompt, so frames never hold the big text. transcript: DETECTOR_LINE_COLUMNS (no text but
    a digest). messages: DETECTOR_MESSAGE_COLUMNS. sessions: id, project_id, end_state,
    has_completion (an LLM call answered: a completion, output tokens or a "stop" finish reason,
    read raw from the span's attributes since content-free telemetry has no completion).
    """
    span_rows = Span.objects.filter(session_id__in=session_pks).values_list(
        *DETECTOR_SPAN_COLUMNS, "payload__params", "payload__prompt"
    )
    spans = _frame(
        ((*row[:-2], _digest(row[-2]), _digest(row[-1])) for row in span_rows),
        [*DETECTOR_SPAN_COLUMNS, "args_hash", "prompt_hash"],
    )
    line_rows = TranscriptLine.objects.filter(session_id__in=session_pks).values_list(
        *DETECTOR_LINE_COLUMNS, "text"
    )
    lines = _frame(
        ((*row[:-1], _digest(row[-1])) for row in line_rows),
        [*DETECTOR_LINE_COLUMNS, "text_hash"],
    )
    message_rows = Message.objects.filter(session_id__in=session_pks).values_list(
        *DETECTOR_MESSAGE_COLUMNS
    )
    messages = _frame(message_rows, DETECTOR_MESSAGE_COLUMNS)
    call_rows = (
        Span.objects.filter(session_id__in=session_pks, kind=Span.Kind.LLM)
        .annotate(
            has_completion=ExpressionWrapper(
                Q(payload__completion__isnull=False), output_field=BooleanField()
            ),
            finish_reasons=KeyTransform(FINISH_REASONS_ATTRIBUTE, "payload__attributes"),
        )
        .values_list(*LLM_CALL_COLUMNS)
    )
    answered = answered_sessions(_frame(call_rows, LLM_CALL_COLUMNS))
    session_rows = Session.objects.filter(pk__in=session_pks).values_list(
        "id", "project_id", "end_state"
    )
    sessions = _frame(
        ((*row, row[0] in answered) for row in session_rows),
        ["id", "project_id", "end_state", "has_completion"],
    )
    return spans, lines, messages, sessions


# The OpenTelemetry GenAI attribute of a call's finish reasons (a list of strings).
FINISH_REASONS_ATTRIBUTE = "gen_ai.response.finish_reasons"


def _digest(value: Any) -> str:
    if value is None or value in ("", [], {}):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def session_flags_for_projects(projects: ProjectScope) -> QuerySet[SessionFlag]:
    """Detector flags, newest first, with the session's client id."""
    return (
        SessionFlag.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"), project_slug=F("project__slug"))
        .order_by("-detected_at", "-id")
    )


def flags_by_session(session_pks: Sequence[int]) -> dict[int, list[SessionFlag]]:
    """The detector flags of these sessions, for badges; one query."""
    flags: dict[int, list[SessionFlag]] = {}
    for flag in SessionFlag.objects.filter(session_id__in=session_pks).order_by("detector"):
        flags.setdefault(flag.session_id, []).append(flag)
    return flags


def anomaly_counts_by_session(project_id: int, session_pks: Sequence[int]) -> dict[int, int]:
    """How many unresolved anomalies name each of these sessions as an example; one query."""
    counts: dict[int, int] = {}
    wanted = set(session_pks)
    rows = Anomaly.objects.filter(project_id=project_id).exclude(status=Anomaly.Status.RESOLVED)
    for examples in rows.values_list("example_session_ids", flat=True):
        for pk in examples or []:
            if pk in wanted:
                counts[pk] = counts.get(pk, 0) + 1
    return counts


def error_span_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Error spans (kind error or status error) started in [since, until): ERROR_SPAN_COLUMNS."""
    rows = (
        Span.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
        .filter(ERROR_SPANS)
        .values_list(*ERROR_SPAN_COLUMNS)
    )
    return _frame(rows.iterator(chunk_size=20_000), ERROR_SPAN_COLUMNS)


def error_cluster_day_frame(project_id: int, fingerprints: Sequence[str]) -> pd.DataFrame:
    """Every day row of these clusters: fingerprint, count, first_seen_at, last_seen_at, agents."""
    columns = ["fingerprint", "count", "first_seen_at", "last_seen_at", "agents"]
    rows = ErrorClusterDay.objects.filter(
        project_id=project_id, fingerprint__in=fingerprints
    ).values_list(*columns)
    return _frame(rows, columns)


def error_clusters_for_projects(projects: ProjectScope) -> QuerySet[ErrorCluster]:
    """Error clusters, most recently seen first."""
    return (
        ErrorCluster.objects.filter(project__in=projects)
        .annotate(
            project_slug=F("project__slug"),
            example_session_external_id=F("example_session__external_id"),
        )
        .order_by("-last_seen_at", "-id")
    )


def alert_span_frame(
    project_id: int, *, since: datetime, until: datetime, agent: str, model: str, tool: str
) -> pd.DataFrame:
    """Spans a metric alert rule looks at: started in [since, until), in the rule's scope."""
    spans = Span.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
    if agent:
        spans = spans.filter(agent_external_id=agent)
    if model:
        spans = spans.filter(model=model)
    if tool:
        spans = spans.filter(kind=Span.Kind.TOOL, name=tool)
    return _frame(spans.values_list(*ROLLUP_SPAN_COLUMNS), ROLLUP_SPAN_COLUMNS)


def alert_session_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Sessions started in [since, until) for session metric rules: end_state, cost, duration."""
    columns = ["end_state", "cost", "duration_ms"]
    rows = Session.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*columns)
    return _frame(rows, columns)


def enabled_alert_rules() -> list[AlertRule]:
    return list(
        AlertRule.objects.filter(is_enabled=True)
        .select_related("project")
        .order_by("project_id", "pk")
    )


def alert_rules_for_projects(projects: ProjectScope) -> QuerySet[AlertRule]:
    return (
        AlertRule.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .order_by("-created_at", "-id")
    )


def alert_events_for_projects(projects: ProjectScope) -> QuerySet[AlertEvent]:
    return (
        AlertEvent.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"), rule_name=F("rule__name"))
        .order_by("-at", "-id")
    )


def reports_for_projects(projects: ProjectScope) -> QuerySet[Report]:
    """Reports, newest period first, without their CSV and HTML text."""
    return (
        Report.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"))
        .defer("csv_text", "html_text")
        .order_by("-period_start", "-id")
    )


def report_schedules() -> list[ReportSchedule]:
    """Every project's schedule; projects without one get the default (daily and weekly)."""
    saved = {s.project_id: s for s in ReportSchedule.objects.all()}
    return [saved.get(pk) or ReportSchedule(project_id=pk) for pk in project_ids()]


def cohort_session_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Finished sessions started in [since, until) with what cohorts split by and compare:
    COHORT_SESSION_COLUMNS."""
    rows = (
        Session.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
        .exclude(end_state=Session.EndState.RUNNING)
        .values_list(*COHORT_SESSION_COLUMNS)
    )
    return _frame(rows, COHORT_SESSION_COLUMNS)


# --- Inter-agent messages, dead letters, agents, workflows -----------------------------------

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
    return (
        Message.objects.filter(project__in=projects)
        .annotate(session_external_id=F("session__external_id"), project_slug=F("project__slug"))
        .order_by("-started_at", "-id")
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
        for receiver in _receiver_list(row["receivers"])
    ]
    frame = pd.DataFrame.from_records(rows, columns=MESSAGE_HOUR_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def _receiver_list(receivers: Any) -> list[str]:
    """A grouped row's receivers: a list, or its JSON text where the database groups by text."""
    if isinstance(receivers, str):
        receivers = json.loads(receivers)
    return [str(r) for r in receivers or []] or [""]


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
    by_type = list(plain.values("error_type").annotate(count=Count("pk")))
    by_edge = list(plain.values("sender", "receivers").annotate(count=Count("pk")))
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
    received = messages.filter(_received_by(names))
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


def _received_by(names: Sequence[str]) -> Q:
    received = Q()
    for name in names:
        received |= json_contains_text("receivers", name)
    return received


def agent_messages(agent: Agent, *, limit: int) -> list[Message]:
    """The agent's messages (sent or received) in its session, newest first."""
    names = agent_names(agent)
    messages = Message.objects.filter(session_id=agent.session_id).filter(
        Q(sender__in=names) | _received_by(names)
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


def json_contains_text(field: str, value: str) -> Q:
    """Rows whose JSON list `field` holds the string `value` (PostgreSQL `@>`; elsewhere the
    JSON-quoted string in the stored text)."""
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


def workflows_for_projects(projects: ProjectScope) -> QuerySet[Workflow]:
    """Workflow runs, newest first, with `session_external_id`, `project_slug` and step counts.

    The step count is a correlated subquery, counted only for the rows a page fetches: a join
    with GROUP BY counted the steps of every run in the range first (1 s at 50,000 runs), and
    made the paginator's COUNT do the same. The session id and project slug are subqueries too,
    so that COUNT (which drops annotations it does not need, not joins) reads only the runs."""
    steps = (
        Step.objects.filter(workflow=OuterRef("pk"))
        .order_by()
        .values("workflow")
        .annotate(n=Count("pk"))
        .values("n")
    )
    session = Session.objects.filter(pk=OuterRef("session_id")).values("external_id")
    project = Project.objects.filter(pk=OuterRef("project_id")).values("slug")
    return (
        Workflow.objects.filter(project__in=projects)
        .annotate(
            session_external_id=Subquery(session),
            project_slug=Subquery(project),
            step_count=Coalesce(Subquery(steps), 0),
        )
        .order_by("-started_at", "-id")
    )


def steps_for_projects(projects: ProjectScope) -> QuerySet[Step]:
    """Workflow steps, newest first, with their run's workflow id and session id annotated."""
    return (
        Step.objects.filter(project__in=projects)
        .annotate(
            workflow_external_id=F("workflow__workflow_id"),
            workflow_name=F("workflow__name"),
            session_external_id=F("workflow__session__external_id"),
        )
        .order_by("-started_at", "-id")
    )


def workflow_for_projects(projects: ProjectScope, pk: int) -> Workflow | None:
    rows = Workflow.objects.filter(project__in=projects).select_related("session", "project")
    return rows.filter(pk=pk).first()


WORKFLOW_STEP_FIELDS = [
    "pk",
    "step_id",
    "name",
    "agent_external_id",
    "status",
    "started_at",
    "ended_at",
    "duration_ms",
    "depends_on",
    "error_type",
    "result_summary",
]


def workflow_steps(workflow: Workflow) -> list[dict[str, Any]]:
    """A run's steps in start order (WORKFLOW_STEP_FIELDS dicts)."""
    steps = Step.objects.filter(workflow=workflow).order_by(F("started_at").asc(nulls_last=True))
    return list(steps.values(*WORKFLOW_STEP_FIELDS))


def workflow_run_frames(
    project_id: int, *, since: datetime, until: datetime, limit: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest `limit` runs started in [since, until) (analytics.workflows.RUN_COLUMNS) and
    their steps (STEP_COLUMNS): two queries, whatever the number of runs."""
    runs = list(
        Workflow.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
        .order_by("-started_at", "-id")
        .values_list(*WORKFLOW_RUN_COLUMNS)[:limit]
    )
    steps = Step.objects.filter(workflow_id__in=[run[0] for run in runs]).values_list(
        "workflow_id", *WORKFLOW_STEP_COLUMNS[1:]
    )
    # Steps stay Python objects (dtype object): the statistics walk them one by one, and
    # converting thousands of times to datetime64 and boxing them back cost more than the walk.
    return (
        pd.DataFrame.from_records(runs, columns=WORKFLOW_RUN_COLUMNS),
        pd.DataFrame(list(steps), columns=WORKFLOW_STEP_COLUMNS, dtype=object),
    )


def workflow_history_frames(
    project_id: int, name: str, *, limit: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The newest `limit` successful, ended runs named `name` (analytics.workflows.RUN_COLUMNS)
    and their steps (STEP_COLUMNS): two queries."""
    runs = list(
        Workflow.objects.filter(
            project_id=project_id,
            name=name,
            status=Workflow.Status.SUCCESS,
            started_at__isnull=False,
            ended_at__isnull=False,
        )
        .order_by("-started_at", "-id")
        .values_list(*WORKFLOW_RUN_COLUMNS)[:limit]
    )
    steps = Step.objects.filter(workflow_id__in=[run[0] for run in runs]).values_list(
        "workflow_id", *WORKFLOW_STEP_COLUMNS[1:]
    )
    return (
        pd.DataFrame.from_records(runs, columns=WORKFLOW_RUN_COLUMNS),
        pd.DataFrame.from_records(list(steps), columns=WORKFLOW_STEP_COLUMNS),
    )


def steps_of_workflows(workflow_pks: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """The steps (WORKFLOW_STEP_FIELDS dicts) of these runs, by run pk: one query."""
    steps: dict[int, list[dict[str, Any]]] = {pk: [] for pk in workflow_pks}
    rows = Step.objects.filter(workflow_id__in=workflow_pks).values(
        "workflow_id", *WORKFLOW_STEP_FIELDS
    )
    for row in rows:
        steps[row.pop("workflow_id")].append(row)
    return steps


# --- Test runs and results (api/views.py, dashboard/views_testruns.py) -------------------------


def effective_tier() -> Coalesce:
    """A result's tier, or its run's when the result names none."""
    return Coalesce(NullIf(F("tier"), Value("")), F("run__tier"))


def test_runs_for_projects(projects: ProjectScope) -> QuerySet[TestRun]:
    """Test runs, newest first, each with `project_slug`, `result_count` and one count per outcome
    (`pass_count`, `fail_count`, `error_count`, `skip_count`, `xfail_count`). One query."""
    counts = {
        f"{outcome}_count": Count("results", filter=Q(results__outcome=outcome))
        for outcome in TestResult.Outcome.values
    }
    return (
        TestRun.objects.filter(project__in=projects)
        .annotate(project_slug=F("project__slug"), result_count=Count("results"), **counts)
        .order_by("-started_at", "-id")
    )


def test_results_for_projects(projects: ProjectScope) -> QuerySet[TestResult]:
    """Test results, newest first, WITHOUT their trace, with the run's fields annotated:
    `run_external_id`, `run_started_at`, `commit`, `branch`, `suite`, `effective_tier`,
    `project_slug`."""
    return (
        TestResult.objects.filter(project__in=projects)
        .defer("error_trace")
        .annotate(
            run_external_id=F("run__external_id"),
            run_started_at=F("run__started_at"),
            commit=F("run__commit"),
            branch=F("run__branch"),
            suite=F("run__suite"),
            effective_tier=effective_tier(),
            project_slug=F("project__slug"),
        )
        .order_by("-id")
    )


def test_result_with_trace(projects: ProjectScope, pk: int) -> TestResult | None:
    """One visible result with its trace and its run (joined), or None."""
    return (
        TestResult.objects.filter(project__in=projects, pk=pk)
        .select_related("run")
        .annotate(effective_tier=effective_tier())
        .first()
    )


def test_history(result: TestResult, *, limit: int) -> list[dict[str, Any]]:
    """The same test's latest `limit` results in its project, oldest first: pk, outcome,
    duration_ms, run_started_at, commit, branch."""
    rows = (
        TestResult.objects.filter(project_id=result.project_id, test_id=result.test_id)
        .annotate(run_started_at=F("run__started_at"), commit=F("run__commit"))
        .order_by(F("run__started_at").desc(nulls_last=True), "-id")
        .values("pk", "outcome", "duration_ms", "run_started_at", "commit")[:limit]
    )
    return list(reversed(rows))


def test_run_results(run: TestRun) -> list[dict[str, Any]]:
    """A run's results without traces, failures and errors first, then by test id."""
    order = {"error": 0, "fail": 1, "xfail": 2, "skip": 3, "pass": 4}
    rows = list(
        TestResult.objects.filter(run=run)
        .annotate(effective_tier=effective_tier())
        .values(
            "pk", "test_id", "name", "effective_tier", "outcome", "duration_ms", "error_message"
        )
    )
    return sorted(rows, key=lambda row: (order.get(row["outcome"], 5), row["test_id"]))


TEST_RUN_FRAME_COLUMNS = ["run_pk", "run_started_at", "commit", "branch", "suite", "run_tier"]


def test_run_frame(
    project_id: int,
    *,
    limit: int | None = None,
    since: datetime | None = None,
    suite: str = "",
    branch: str = "",
) -> pd.DataFrame:
    """The newest `limit` runs (or every run since `since`) with this suite and branch when
    given, newest first: TEST_RUN_FRAME_COLUMNS. Runs without a start time are left out."""
    runs = TestRun.objects.filter(project_id=project_id, started_at__isnull=False)
    if since is not None:
        runs = runs.filter(started_at__gte=since)
    if suite:
        runs = runs.filter(suite=suite)
    if branch:
        runs = runs.filter(branch=branch)
    rows = runs.order_by("-started_at", "-id").values_list(
        "pk", "started_at", "commit", "branch", "suite", "tier"
    )
    return pd.DataFrame.from_records(
        list(rows[:limit] if limit is not None else rows), columns=TEST_RUN_FRAME_COLUMNS
    )


def test_result_frame(
    runs: pd.DataFrame, *, tier: str = "", with_details: bool = True
) -> pd.DataFrame:
    """The results of these runs (test_run_frame) as analytics.testruns.RESULT_COLUMNS, tier being
    the result's or else its run's; only `tier`'s when given. One query on the results table
    alone (no join, no messages or traces): the run columns come from `runs`. Without
    `with_details`, name is the test id and duration_ms is missing (the heatmap needs neither,
    and 100,000 fewer strings and floats are a third of its query time)."""
    fields = ["pk", "run_id", "test_id", "tier", "outcome"]
    columns = ["result_pk", "run_pk", "test_id", "tier", "outcome"]
    if with_details:
        fields += ["name", "duration_ms"]
        columns += ["name", "duration_ms"]
    rows = (
        TestResult.objects.filter(run_id__in=[int(pk) for pk in runs["run_pk"]])
        .order_by()
        .values_list(*fields)
    )
    results = pd.DataFrame.from_records(list(rows), columns=columns)
    if not with_details:
        results["name"] = results["test_id"]
    results = results.merge(runs, on="run_pk", how="left")
    results["tier"] = results["tier"].where(results["tier"] != "", results["run_tier"])
    if tier:
        results = results[results["tier"] == tier]
    return results.reindex(columns=TEST_RESULT_COLUMNS).reset_index(drop=True)


def test_filter_choices(project_id: int) -> dict[str, list[str]]:
    """The tiers, suites and branches a project's runs and results use, for filter menus."""
    runs = TestRun.objects.filter(project_id=project_id)
    # Result tiers are read only from runs without a tier (mixed runs), which keeps this off the
    # bulk of the results table: a result overriding its tiered run's tier misses the menu (it
    # still shows on the pages).
    result_tiers = TestResult.objects.filter(run__in=runs.filter(tier="").values("pk")).exclude(
        tier=""
    )
    return {
        "tiers": sorted(
            set(runs.exclude(tier="").values_list("tier", flat=True).distinct())
            | set(result_tiers.values_list("tier", flat=True).distinct())
        ),
        "suites": sorted(runs.exclude(suite="").values_list("suite", flat=True).distinct()),
        "branches": sorted(runs.exclude(branch="").values_list("branch", flat=True).distinct()),
    }


def tested_session_ids(run_pks: Sequence[int]) -> set[str]:
    """Client session ids that results of these runs link to."""
    lists = TestResult.objects.filter(run_id__in=run_pks).exclude(session_ids=[])
    return {sid for ids in lists.values_list("session_ids", flat=True) for sid in ids}


def coverage_usage(
    project_id: int, test_session_ids: set[str], *, since: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(production, tested) usage frames (analytics.coverage.USAGE_COLUMNS): agents (sessions
    each agent name appears in), tools and steps (calls; tool and action spans by name).
    Production is every other session started since `since`; tested is the linked sessions,
    whenever they ran. Six grouped queries."""
    tested_sessions = Session.objects.filter(
        project_id=project_id, external_id__in=test_session_ids
    )
    production_sessions = Session.objects.filter(
        project_id=project_id, started_at__gte=since
    ).exclude(external_id__in=test_session_ids)
    return (
        _usage_frame(production_sessions.values("pk")),
        _usage_frame(tested_sessions.values("pk")),
    )


def _usage_frame(sessions: QuerySet[Any]) -> pd.DataFrame:
    agent_name = Coalesce(NullIf(F("name"), Value("")), F("external_id"))
    agents = (
        Agent.objects.filter(session__in=sessions)
        .annotate(item=agent_name)
        .values("item")
        .annotate(count=Count("session", distinct=True))
        .values_list("item", "count")
    )
    rows = [("agent", name, count) for name, count in agents]
    for kind, span_kind in (("tool", Span.Kind.TOOL), ("step", Span.Kind.ACTION)):
        spans = (
            Span.objects.filter(session__in=sessions, kind=span_kind)
            .values("name")
            .annotate(count=Count("pk"))
            .values_list("name", "count")
        )
        rows += [(kind, name, count) for name, count in spans]
    return pd.DataFrame.from_records(rows, columns=["kind", "name", "count"])


def report_exists(project_id: int, *, period: str, period_start: datetime) -> bool:
    return Report.objects.filter(
        project_id=project_id, period=period, period_start=period_start
    ).exists()


def report_of_period(project_id: int, *, period: str, period_start: datetime) -> Report | None:
    return Report.objects.filter(
        project_id=project_id, period=period, period_start=period_start
    ).first()


def report_for_projects(projects: ProjectScope, pk: int) -> Report | None:
    """One report with its CSV and HTML text, or None if not visible."""
    return Report.objects.filter(project__in=projects, pk=pk).first()


def report_schedule(project_id: int) -> ReportSchedule:
    """The project's schedule, or the default (daily and weekly, no email) unsaved."""
    return ReportSchedule.objects.filter(project_id=project_id).first() or ReportSchedule(
        project_id=project_id
    )


def project_ids_for_slug(slug: str | None) -> list[int]:
    """Every project's id (slug None), or the one project with this slug (empty if none)."""
    projects = Project.objects.order_by("pk")
    if slug is not None:
        projects = projects.filter(slug=slug)
    return list(projects.values_list("pk", flat=True))


def session_pks_of_project(project_id: int) -> list[int]:
    sessions = Session.objects.filter(project_id=project_id).order_by("pk")
    return list(sessions.values_list("pk", flat=True))


def open_anomalies(project_id: int, *, limit: int) -> list[Anomaly]:
    """The newest open anomalies of a project (the overview's card)."""
    anomalies = Anomaly.objects.filter(project_id=project_id, status=Anomaly.Status.OPEN)
    return list(anomalies.order_by("-window_start", "-id")[:limit])


def anomalies_naming_session(session: Session) -> list[Anomaly]:
    """Unresolved anomalies that give this session as an example (JSON list membership is
    checked in Python: SQLite has no containment lookup, and a project has few anomalies)."""
    anomalies = Anomaly.objects.filter(project_id=session.project_id).exclude(
        status=Anomaly.Status.RESOLVED
    )
    found = anomalies.order_by("-window_start", "-id")
    return [a for a in found if session.pk in (a.example_session_ids or [])]


def stale_summary_count(project_ids: Sequence[int]) -> int:
    """Sessions of these projects whose summary the worker has not rebuilt yet."""
    return Session.objects.filter(project_id__in=project_ids, is_summary_stale=True).count()


def requeue_webhook_rows(message_pks: Sequence[int]) -> list[dict[str, Any]]:
    """The requeued messages whose project has a webhook URL, oldest requeue first: pk,
    message_id, session_external_id, sender, receivers, channel, requeued_at, project_slug, url,
    secret (the project's signing secret)."""
    rows = Message.objects.filter(pk__in=message_pks).exclude(project__requeue_webhook_url="")
    return list(
        rows.order_by("requeued_at", "id").values(
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
    )


# --- Stored test analysis (analytics.tasks.refresh_test_analysis_task) ---------------------------


def test_analysis_computed_at(project_id: int) -> datetime | None:
    """When the project's stored test analysis was last computed; None: never."""
    state = TestAnalysisState.objects.filter(project_id=project_id).values_list(
        "computed_at", flat=True
    )
    return next(iter(state), None)


def _stored_frame(
    model: Any, columns: list[str], project_id: int, window_runs: int
) -> pd.DataFrame:
    rows = model.objects.filter(project_id=project_id, window_runs=window_runs).values_list(
        *columns
    )
    return pd.DataFrame.from_records(list(rows), columns=columns)


def stored_flaky_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored flakiness_scores of the window (FLAKY_COLUMNS), flakiest first."""
    frame = _stored_frame(StoredFlakyTest, FLAKY_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["flakiness", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_regression_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored outcome_regressions of the window (REGRESSION_COLUMNS), newest breakage first."""
    frame = _stored_frame(StoredTestRegression, REGRESSION_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["first_failing_at", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_duration_frame(project_id: int, window_runs: int) -> pd.DataFrame:
    """Stored duration_regressions of the window (DURATION_COLUMNS), biggest slowdown first."""
    frame = _stored_frame(StoredDurationRegression, DURATION_COLUMNS, project_id, window_runs)
    frame = frame.sort_values(["ratio", "test_id"], ascending=[False, True])
    return frame.reset_index(drop=True)


def stored_pass_rate_frame(
    project_id: int, *, since: datetime, tier: str = "", suite: str = ""
) -> pd.DataFrame:
    """Stored pass-rate days from since's day on, summed over suites, in pass_rate_trend's
    columns (bucket, tier, passed, failed, total, pass_rate, runs)."""
    days = TestPassRateDay.objects.filter(project_id=project_id, day__gte=since.date())
    if tier:
        days = days.filter(tier=tier)
    if suite:
        days = days.filter(suite=suite)
    rows = (
        days.values("day", "tier")
        .annotate(
            passed_sum=Sum("passed"),
            failed_sum=Sum("failed"),
            total_sum=Sum("total"),
            runs_sum=Sum("runs"),
        )
        .order_by("day", "tier")
    )
    frame = pd.DataFrame.from_records(
        list(rows.values_list("day", "tier", "passed_sum", "failed_sum", "total_sum", "runs_sum")),
        columns=["bucket", "tier", "passed", "failed", "total", "runs"],
    )
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    frame["pass_rate"] = frame["passed"] / frame["total"]
    return frame[["bucket", "tier", "passed", "failed", "total", "pass_rate", "runs"]]


def stored_duration_trend_frame(
    project_id: int, *, since: datetime, tier: str = ""
) -> pd.DataFrame:
    """Stored duration days from since's day on, in duration_trend's columns (bucket, tier,
    run_ms, test_ms, runs), by day then tier."""
    days = TestDurationDay.objects.filter(project_id=project_id, day__gte=since.date())
    if tier:
        days = days.filter(tier=tier)
    columns = ["day", "tier", "run_ms", "test_ms", "runs"]
    frame = pd.DataFrame.from_records(
        list(days.order_by("day", "tier").values_list(*columns)), columns=columns
    )
    frame["day"] = pd.to_datetime(frame["day"], utc=True)
    return frame.rename(columns={"day": "bucket"})


def stored_tier_reliability_frame(project_id: int, days: int, *, tier: str = "") -> pd.DataFrame:
    """Stored tests and mean reliability per tier over the last `days` days, by tier."""
    rows = TestTierReliability.objects.filter(project_id=project_id, days=days)
    if tier:
        rows = rows.filter(tier=tier)
    columns = ["tier", "tests", "reliability"]
    return pd.DataFrame.from_records(
        list(rows.order_by("tier").values_list(*columns)), columns=columns
    )


def stored_coverage_frame(project_id: int, days: int) -> tuple[pd.DataFrame, int]:
    """Stored coverage_table of the last `days` days (COVERAGE_COLUMNS, in its order: uncovered
    first, then by kind, busiest in production first) and the count of test-linked sessions."""
    rows = TestCoverageItem.objects.filter(project_id=project_id, days=days)
    frame = pd.DataFrame.from_records(
        list(rows.values_list(*COVERAGE_COLUMNS)), columns=COVERAGE_COLUMNS
    )
    order = frame["kind"].map({kind: i for i, kind in enumerate(COVERAGE_KINDS)})
    frame = frame.assign(kind_order=order).sort_values(
        ["is_covered", "kind_order", "production_count", "name"],
        ascending=[True, True, False, True],
    )
    counts = TestAnalysisState.objects.filter(project_id=project_id).values_list(
        "tested_session_counts", flat=True
    )
    count = next(iter(counts), None) or {}
    return frame[COVERAGE_COLUMNS].reset_index(drop=True), int(count.get(str(days), 0))


def projects_with_stale_test_analysis(*, scheduled_before: datetime) -> list[int]:
    """Projects with test runs whose analysis was never computed, or whose queued refresh has
    not run since `scheduled_before` (a lost task, a broker outage)."""
    computed = TestAnalysisState.objects.filter(computed_at__isnull=False).values("project_id")
    never = TestRun.objects.exclude(project_id__in=computed).values_list("project_id", flat=True)
    lost = TestAnalysisState.objects.filter(
        is_scheduled=True, scheduled_at__lt=scheduled_before
    ).values_list("project_id", flat=True)
    return sorted(set(never.distinct()) | set(lost))


# --- Agents by name ----------------------------------------------------------------------------


def agent_instance_frame(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """Agents (one per session) whose session started in [since, until): INSTANCE_COLUMNS, with
    last_seen the session's end (or start). `name` keeps only the instances of one name (an
    instance without a name is called by its id)."""
    return _instance_frame(project_id, [(since, until)], name=name)


def _started_in(field: str, ranges: Sequence[tuple[datetime, datetime]]) -> Q:
    within = Q(pk__in=[])
    for since, until in ranges:
        within |= Q(**{f"{field}__gte": since, f"{field}__lt": until})
    return within


def _instance_frame(
    project_id: int, ranges: Sequence[tuple[datetime, datetime]], *, name: str | None = None
) -> pd.DataFrame:
    rows = Agent.objects.filter(_started_in("session__started_at", ranges), project_id=project_id)
    if name is not None:
        rows = rows.filter(Q(name=name) | Q(name="", external_id=name))
    values = rows.annotate(
        started_at=F("session__started_at"),
        last_seen=Coalesce("session__ended_at", "session__started_at"),
    ).values_list(*INSTANCE_COLUMNS)
    return _frame(values, INSTANCE_COLUMNS)


def agent_rollup_frame(
    project_id: int,
    *,
    granularity: str,
    since: datetime,
    until: datetime,
    name: str | None = None,
) -> pd.DataFrame:
    """Stored span rollups by agent name (NamedRollup) that name an agent, bucket_start in
    [since, until): AGENT_ROLLUP_COLUMNS with `day` the bucket's UTC date."""
    rows = (
        NamedRollup.objects.filter(
            project_id=project_id,
            granularity=granularity,
            bucket_start__gte=since,
            bucket_start__lt=until,
        )
        .exclude(agent="")
        .exclude(kind="session")
    )
    if name is not None:
        rows = rows.filter(agent=name)
    fields = ["agent", "bucket_start", *AGENT_ROLLUP_COLUMNS[2:]]
    frame = _histogram_frame(rows, fields)
    frame["day"] = pd.to_datetime(frame.pop("bucket_start"), utc=True).dt.date
    return frame[AGENT_ROLLUP_COLUMNS]


def agent_sent_frame(project_id: int, ranges: Sequence[tuple[datetime, datetime]]) -> pd.DataFrame:
    """Messages started in any of the [since, until) ranges per sender and UTC hour:
    SENT_COLUMNS, one query. A sender that is the id of an agent of the message's session with a
    name is given that name (agentops senders are per-session uuids)."""
    instance_name = (
        Agent.objects.filter(session_id=OuterRef("session_id"), external_id=OuterRef("sender"))
        .exclude(name="")
        .values("name")[:1]
    )
    counted = (
        Message.objects.filter(_started_in("started_at", ranges), project_id=project_id)
        .exclude(sender="")
        .order_by()
        .annotate(who=Coalesce(Subquery(instance_name), F("sender")), hour=TruncHour("started_at"))
        .values("who", "hour")
        .annotate(sent=Count("pk"), failed=Count("pk", filter=Q(status__in=FAILURE_STATUSES)))
        .values_list("who", "hour", "sent", "failed")
    )
    return _frame(counted, SENT_COLUMNS)


def agent_activity_frame(
    project_id: int, ranges: Sequence[tuple[datetime, datetime]]
) -> pd.DataFrame:
    """The hourly activity per agent name (ACTIVITY_COLUMNS) of the sessions and messages that
    started in the ranges, from the instances and messages (what the refresh stores): two
    queries."""
    instances = _instance_frame(project_id, ranges)
    return agent_activity(instances, agent_sent_frame(project_id, ranges))


def agent_activity_totals(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """TOTAL_COLUMNS per agent name for the sessions and messages that started in [since,
    until): the whole hours summed in the database from the stored AgentNameRollup rows, the
    partial hours at either end from the instances and messages."""
    first_hour, end_hour = whole_hours(since, until)
    parts = []
    if first_hour < end_hour:
        stored = AgentNameRollup.objects.filter(
            project_id=project_id, hour__gte=first_hour, hour__lt=end_hour
        )
        if name is not None:
            stored = stored.filter(name=name)
        summed = (
            stored.order_by()
            .values("name")
            .annotate(
                sessions=Sum("session_count"),
                last=Max("last_seen"),
                sent=Sum("sent_count"),
                failed=Sum("failed_count"),
            )
            .values_list("name", "sessions", "last", "sent", "failed")
        )
        parts.append(_frame(summed, TOTAL_COLUMNS))
    else:
        first_hour = end_hour = since
    edges = [(start, end) for start, end in ((since, first_hour), (end_hour, until)) if start < end]
    if edges:
        activity = agent_activity_frame(project_id, edges)
        if name is not None:
            activity = activity[activity["name"] == name]
        parts.append(activity_totals(activity))
    parts = [part for part in parts if len(part)]
    if not parts:
        return pd.DataFrame(columns=TOTAL_COLUMNS)
    return activity_totals(pd.concat(parts, ignore_index=True))


def agent_name_table(
    project_id: int, *, since: datetime, until: datetime, name: str | None = None
) -> pd.DataFrame:
    """analytics.agent_names.NAME_STAT_COLUMNS per agent name (or for one name), from stored
    rollups only (a few queries whatever the number of sessions): span figures from NamedRollup
    (hourly up to 2 days, else whole UTC days), sessions and messages from AgentNameRollup."""
    granularity, start, days = rollup_window(since, until)
    totals = agent_activity_totals(project_id, since=since, until=until, name=name)
    rollups = agent_rollup_frame(
        project_id, granularity=granularity, since=start, until=until, name=name
    )
    table = agent_name_stats(totals, rollups, days=days)
    return table if name is None else table[table["name"] == name]


def agent_name_ids(project_id: int, name: str, *, since: datetime, until: datetime) -> list[str]:
    """Every id and name messages may use for one agent name in the range."""
    instances = agent_instance_frame(project_id, since=since, until=until, name=name)
    return sorted({name, *name_of_id(instances)})


def agent_name_messages(
    project_id: int, names: Sequence[str], *, since: datetime, until: datetime, limit: int
) -> list[Message]:
    """Messages sent or received by any of `names` (ids and names of one agent), newest first."""
    messages = Message.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).filter(Q(sender__in=list(names)) | _received_by(names))
    messages = messages.annotate(session_external_id=F("session__external_id"))
    return list(messages.order_by("-started_at", "-id")[:limit])


def agent_name_instances(
    project_id: int, name: str, *, since: datetime, until: datetime, limit: int
) -> list[Agent]:
    """The instances (one per session) of one agent name, newest session first."""
    rows = Agent.objects.filter(
        project_id=project_id, session__started_at__gte=since, session__started_at__lt=until
    ).filter(Q(name=name) | Q(name="", external_id=name))
    return list(rows.select_related("session").order_by("-session__started_at", "-id")[:limit])


def raw_removed_before(project_id: int) -> datetime | None:
    """The time before which retention removed the project's raw telemetry (None: never)."""
    return (
        Project.objects.filter(pk=project_id).values_list("raw_removed_before", flat=True).first()
    )
