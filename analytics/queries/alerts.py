"""Reads of error clusters, alert rules and events, reports and cohorts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd
from django.db.models import QuerySet

from analytics.clusters import ERROR_SPAN_COLUMNS
from analytics.cohorts import COHORT_SESSION_COLUMNS
from analytics.models import (
    AlertEvent,
    AlertRule,
    ErrorCluster,
    ErrorClusterDay,
    Report,
    ReportSchedule,
)
from analytics.queries.frames import rows_frame
from analytics.queries.scope import ProjectScope, newest_first, project_ids
from analytics.span_errors import ERROR_SPANS
from analytics.trends import SPAN_COLUMNS as ROLLUP_SPAN_COLUMNS
from ingest.models import Session, Span


def error_span_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Error spans (kind error or status error) started in [since, until): ERROR_SPAN_COLUMNS."""
    rows = (
        Span.objects.filter(project_id=project_id, started_at__gte=since, started_at__lt=until)
        .filter(ERROR_SPANS)
        .values_list(*ERROR_SPAN_COLUMNS)
    )
    return rows_frame(rows.iterator(chunk_size=20_000), ERROR_SPAN_COLUMNS)


def error_cluster_day_frame(project_id: int, fingerprints: Sequence[str]) -> pd.DataFrame:
    """Every day row of these clusters: fingerprint, count, first_seen_at, last_seen_at, agents."""
    columns = ["fingerprint", "count", "first_seen_at", "last_seen_at", "agents"]
    rows = ErrorClusterDay.objects.filter(
        project_id=project_id, fingerprint__in=fingerprints
    ).values_list(*columns)
    return rows_frame(rows, columns)


def error_clusters_for_projects(projects: ProjectScope) -> QuerySet[ErrorCluster]:
    """Error clusters, most recently seen first."""
    return newest_first(
        ErrorCluster,
        projects,
        "last_seen_at",
        project_slug="project__slug",
        example_session_external_id="example_session__external_id",
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
    return rows_frame(spans.values_list(*ROLLUP_SPAN_COLUMNS), ROLLUP_SPAN_COLUMNS)


def alert_session_frame(project_id: int, *, since: datetime, until: datetime) -> pd.DataFrame:
    """Sessions started in [since, until) for session metric rules: end_state, cost, duration."""
    columns = ["end_state", "cost", "duration_ms"]
    rows = Session.objects.filter(
        project_id=project_id, started_at__gte=since, started_at__lt=until
    ).values_list(*columns)
    return rows_frame(rows, columns)


def enabled_alert_rules() -> list[AlertRule]:
    return list(
        AlertRule.objects.filter(is_enabled=True)
        .select_related("project")
        .order_by("project_id", "pk")
    )


def alert_rules_for_projects(projects: ProjectScope) -> QuerySet[AlertRule]:
    return newest_first(AlertRule, projects, "created_at", project_slug="project__slug")


def alert_events_for_projects(projects: ProjectScope) -> QuerySet[AlertEvent]:
    return newest_first(
        AlertEvent, projects, "at", project_slug="project__slug", rule_name="rule__name"
    )


def reports_for_projects(projects: ProjectScope) -> QuerySet[Report]:
    """Reports, newest period first, without their CSV and HTML text."""
    return newest_first(Report, projects, "period_start", project_slug="project__slug").defer(
        "csv_text", "html_text"
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
    return rows_frame(rows, COHORT_SESSION_COLUMNS)


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
