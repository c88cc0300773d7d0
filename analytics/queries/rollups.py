"""The analytics engine's reads: rollups, metric samples and time bounds (analytics/refresh.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pandas as pd
from django.db.models import Count, Max, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from analytics.models import Rollup
from analytics.queries.frames import histogram_frame, rows_frame
from analytics.queries.scope import ProjectScope, newest_first
from analytics.trends import PERCENTILE_COLUMNS, ROLLUP_COLUMNS, SUM_COLUMNS
from analytics.trends import SESSION_COLUMNS as ROLLUP_SESSION_COLUMNS
from analytics.trends import SPAN_COLUMNS as ROLLUP_SPAN_COLUMNS
from ingest.models import Agent, Message, MetricSample, Session, Span, TranscriptLine


def rollup_span_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Spans started in [since, until): analytics.trends.SPAN_COLUMNS, no payload."""
    rows = Span.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*ROLLUP_SPAN_COLUMNS)
    return rows_frame(rows.iterator(chunk_size=20_000), ROLLUP_SPAN_COLUMNS)


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
    return rows_frame(rows, ROLLUP_SESSION_COLUMNS)


def rollup_frame(
    project_id: int,
    *,
    granularity: str,
    since: datetime,
    until: datetime,
) -> pd.DataFrame:
    """Stored rollups (agents by name, a few rows per hour however many sessions ran) with
    bucket_start in [since, until) as analytics.trends.ROLLUP_COLUMNS."""
    fields = ["bucket_start", *ROLLUP_COLUMNS[1:]]
    rows = Rollup.objects.filter(
        project_id=project_id,
        granularity=granularity,
        bucket_start__gte=since,
        bucket_start__lt=until,
    )
    frame = histogram_frame(rows, fields).rename(columns={"bucket_start": "bucket"})
    frame["bucket"] = pd.to_datetime(frame["bucket"], utc=True)
    return frame


def rolled_up_until(project_id: int) -> datetime | None:
    """The end of the newest hour the refresh has rolled up (Rollup), or None."""
    last = (
        Rollup.objects.filter(project_id=project_id, granularity=Rollup.Granularity.HOUR)
        .order_by("-bucket_start")
        .values_list("bucket_start", flat=True)
        .first()
    )
    return None if last is None else last + timedelta(hours=1)


def window_rollup_frames(
    project_id: int, *, since: datetime, until: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """What a page needs to sum [since, until) without reading every span: the stored hourly
    Rollup rows of the whole hours the refresh has rolled up, and the spans and sessions
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
        or [rows_frame([], ROLLUP_SPAN_COLUMNS)],
        ignore_index=True,
    )
    sessions = pd.concat(
        [rollup_session_frame(project_id, since=a, until=b) for a, b in raw if a < b]
        or [rows_frame([], ROLLUP_SESSION_COLUMNS)],
        ignore_index=True,
    )
    return stored, spans, sessions


def _window_rollups(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Hourly Rollup rows in [since, until) as ROLLUP_COLUMNS, with only what the overview
    sums: LLM rows as stored (their histograms merge into latency percentiles), the other kinds
    summed per hour, kind and model in the database (no agent, tool or histogram)."""
    rows = Rollup.objects.filter(
        project_id=project_id,
        granularity=Rollup.Granularity.HOUR,
        bucket_start__gte=since,
        bucket_start__lt=until,
    )
    llm = histogram_frame(rows.filter(kind="llm"), ["bucket_start", *ROLLUP_COLUMNS[1:]])
    sums = (
        rows.exclude(kind="llm")
        .values("bucket_start", "kind", "model")
        .order_by()
        .annotate(**{column: Sum(column) for column in SUM_COLUMNS})
        .values_list("bucket_start", "kind", "model", *SUM_COLUMNS)
    )
    summed = rows_frame(sums, ["bucket_start", "kind", "model", *SUM_COLUMNS]).assign(
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
    return newest_first(Rollup, projects, "bucket_start", project_slug="project__slug").defer(
        "latency_histogram"
    )


def metric_sample_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Metric samples taken in [since, until): columns at, name, value, agent_external_id."""
    columns = ["at", "name", "value", "agent_external_id"]
    rows = MetricSample.objects.filter(
        project_id=project_id, at__gte=since, at__lt=until
    ).values_list(*columns)
    return rows_frame(rows, columns)


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
