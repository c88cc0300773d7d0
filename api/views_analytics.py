"""Analytics endpoints: stored rollups, anomalies (with a status action), session flags, error
clusters, alert rules and history, reports; and computed tables (trend series, the report
builder, cohort comparison, forecasts). Every list answers `?format=csv` too."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics import queries, store
from analytics.cohorts import (
    FORECAST_METRICS,
    SPLITS,
    cohort_labels,
    compare_cohorts,
    daily_totals,
    forecast_daily,
)
from analytics.reports import DEFAULT_METRICS, GROUPINGS, REPORT_METRICS, report_table
from analytics.safe_csv import csv_rows
from analytics.trends import SERIES_GROUPS, trend_series
from api import filters_analytics as filters
from api import serializers_analytics as serializers
from api.params import datetime_param, time_range
from api.renderers import CSVRenderer
from api.scope import project_of, require_person, visible_projects
from api.views import FrameList, ListView
from ingest import access, audit
from ingest.models import AuditEntry


class RollupList(ListView):
    """Stored rollups: one row per hour or day, agent, model, tool and kind."""

    serializer_class = serializers.RollupSerializer
    filterset_class = filters.RollupFilter
    csv_filename = "rollups.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.rollups_for_projects(visible_projects(self.request))


class AnomalyList(ListView):
    serializer_class = serializers.AnomalySerializer
    filterset_class = filters.AnomalyFilter
    csv_filename = "anomalies.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.anomalies_for_projects(visible_projects(self.request))


class IncidentList(ListView):
    """Incidents: the anomaly flags of one cause grouped, with their window, lead flag's
    numbers, top dimension and flags."""

    serializer_class = serializers.IncidentSerializer
    filterset_class = filters.IncidentFilter
    csv_filename = "incidents.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.incidents_for_projects(visible_projects(self.request))


class AnomalyStatus(APIView):
    """Acknowledge, resolve or reopen an anomaly: `{"status": "acknowledged"}`."""

    @extend_schema(
        request=serializers.AnomalyStatusSerializer, responses=serializers.AnomalySerializer
    )
    def post(self, request: Request, pk: int) -> Response:
        anomaly = queries.anomaly_for_projects(visible_projects(request), pk)
        if anomaly is None:
            raise NotFound("Not found")
        require_person(request, anomaly.project_id, access.Action.SET_ANOMALY_STATUS)
        body = serializers.AnomalyStatusSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        status = body.validated_data["status"]
        with transaction.atomic():
            store.set_anomaly_status(anomaly, status, user=_user(request))
            audit.record(
                request,
                AuditEntry.Action.ANOMALY_STATUS,
                project_id=anomaly.project_id,
                target=f"anomaly #{anomaly.pk} ({anomaly.metric})",
                changes=audit.diff({"status": anomaly.status}, {"status": status}),
            )
        updated = queries.anomalies_for_projects([anomaly.project_id]).get(pk=pk)
        return Response(serializers.AnomalySerializer(updated).data)


def _user(request: Request) -> Any:
    """The user behind the request; None for an API key (it acts for its project, not a user)."""
    return request.user if isinstance(request.user, get_user_model()) else None


class SessionFlagList(ListView):
    """Failure patterns the detectors found in sessions (loops, ping-pong, retry storms…)."""

    serializer_class = serializers.SessionFlagSerializer
    filterset_class = filters.SessionFlagFilter
    csv_filename = "session-flags.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.session_flags_for_projects(visible_projects(self.request))


class ErrorClusterList(ListView):
    serializer_class = serializers.ErrorClusterSerializer
    filterset_class = filters.ErrorClusterFilter
    csv_filename = "error-clusters.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.error_clusters_for_projects(visible_projects(self.request))


class AlertRuleList(ListView):
    serializer_class = serializers.AlertRuleSerializer
    csv_filename = "alert-rules.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.alert_rules_for_projects(visible_projects(self.request))


class AlertEventList(ListView):
    """Alert history: state changes, re-notifications and tests, with their delivery."""

    serializer_class = serializers.AlertEventSerializer
    filterset_class = filters.AlertEventFilter
    csv_filename = "alert-events.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.alert_events_for_projects(visible_projects(self.request))


class ReportList(ListView):
    serializer_class = serializers.ReportSerializer
    filterset_class = filters.ReportFilter
    csv_filename = "reports.csv"

    def get_queryset(self) -> QuerySet[Any]:
        return queries.reports_for_projects(visible_projects(self.request))


class ReportCsv(APIView):
    """The CSV of one stored report, as made."""

    renderer_classes = [CSVRenderer]

    @extend_schema(responses={(200, "text/csv"): str})
    def get(self, request: Request, pk: int) -> HttpResponse:
        report = queries.report_for_projects(visible_projects(request), pk)
        if report is None:
            raise NotFound("Not found")
        response = HttpResponse(report.csv_text, content_type="text/csv; charset=utf-8")
        name = f"report-{report.period}-{report.period_start:%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


# --- Computed tables --------------------------------------------------------------------------


def _choice(request: Request, name: str, choices: Any, default: str) -> str:
    value = request.query_params.get(name, default)
    if value not in choices:
        raise ValidationError({name: f"One of {', '.join(choices)}"})
    return value


def trend_frame(request: Request) -> pd.DataFrame:
    """The trend series the query string asks for (the dashboard's chart CSV links use it)."""
    params = request.query_params
    since, until = time_range(request, now=timezone.now())
    granularity = _choice(request, "granularity", ("hour", "day"), "hour")
    group_name = params.get("group", "")
    if group_name and group_name not in SERIES_GROUPS:
        raise ValidationError({"group": f"One of {', '.join(SERIES_GROUPS)}"})
    kinds = [k for k in params.get("kind", "").split(",") if k]
    rollups = queries.rollup_frame(
        project_of(request), granularity=granularity, since=since, until=until
    )
    return trend_series(rollups, group=group_name or None, kinds=kinds)


TREND_PARAMS = [
    OpenApiParameter("project", str, description="Project slug (unless the API key says)."),
    OpenApiParameter("group", str, enum=list(SERIES_GROUPS), description="One series per value."),
    OpenApiParameter("kind", str, description="Comma-separated span kinds (or session)."),
    OpenApiParameter("granularity", str, enum=["hour", "day"]),
    OpenApiParameter("days", int, description="Back from now (default 7)."),
    OpenApiParameter("since", str),
    OpenApiParameter("until", str),
]


@extend_schema(parameters=TREND_PARAMS)
class TrendSeriesList(FrameList):
    """Merged rollups per bucket and group: the table behind every trend chart."""

    serializer_class = serializers.TrendSeriesSerializer
    csv_filename = "trend.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        return trend_frame(request)


@extend_schema(
    parameters=[
        OpenApiParameter("project", str),
        OpenApiParameter("grouping", str, enum=list(GROUPINGS)),
        OpenApiParameter(
            "metrics", str, description=f"Comma-separated: {', '.join(REPORT_METRICS)}"
        ),
        OpenApiParameter("days", int),
        OpenApiParameter("since", str),
        OpenApiParameter("until", str),
    ],
    responses={(200, "text/csv"): str},
)
class ReportBuilder(APIView):
    """An on-demand report: the chosen metrics over a range, grouped; JSON rows or CSV."""

    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]

    def get(self, request: Request) -> Any:
        table = report_builder_table(request)
        if request.accepted_renderer.format == CSVRenderer.format:
            records = table.astype(object).where(table.notna(), None).to_dict("records")
            response = StreamingHttpResponse(
                csv_rows(list(table.columns), records), content_type="text/csv; charset=utf-8"
            )
            response["Content-Disposition"] = 'attachment; filename="report.csv"'
            return response
        records = table.astype(object).where(table.notna(), None).to_dict("records")
        return Response({"count": len(records), "results": records})


def report_builder_table(request: Request) -> pd.DataFrame:
    since, until = time_range(request, now=timezone.now())
    grouping = _choice(request, "grouping", GROUPINGS, "day")
    metrics = [m for m in request.query_params.get("metrics", "").split(",") if m]
    unknown = [m for m in metrics if m not in REPORT_METRICS]
    if unknown:
        raise ValidationError({"metrics": f"Unknown: {', '.join(unknown)}"})
    granularity = "hour" if grouping == "hour" else "day"
    rollups = queries.rollup_frame(
        project_of(request), granularity=granularity, since=since, until=until
    )
    return report_table(rollups, grouping=grouping, metrics=metrics or list(DEFAULT_METRICS))


@extend_schema(
    parameters=[
        OpenApiParameter("project", str),
        OpenApiParameter("split", str, enum=list(SPLITS), description="How to split sessions."),
        OpenApiParameter("key", str, description="metadata/config: the key to read."),
        OpenApiParameter("a", str, description="Cohort a: a tag or value."),
        OpenApiParameter("b", str, description="Cohort b: a tag or value."),
        OpenApiParameter("change_at", str, description="before_after: the change's time."),
        OpenApiParameter("days", int),
    ]
)
class CohortComparison(FrameList):
    """The same per-session metrics for two cohorts, their difference and its significance."""

    serializer_class = serializers.CohortDifferenceSerializer
    csv_filename = "cohorts.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        return pd.DataFrame([vars(d) for d in cohort_differences(request)])


def cohort_differences(request: Request) -> list[Any]:
    params = request.query_params
    since, until = time_range(request, now=timezone.now())
    split = _choice(request, "split", SPLITS, "tag")
    change_at = datetime_param(params.get("change_at"), "change_at")
    if split == "before_after" and change_at is None:
        raise ValidationError({"change_at": "Needed to split before and after a change"})
    sessions = queries.cohort_session_frame(project_of(request), since=since, until=until)
    labels = cohort_labels(
        sessions,
        split=split,
        key=params.get("key", ""),
        a=params.get("a", ""),
        b=params.get("b", ""),
        change_at=change_at,
    )
    return compare_cohorts(sessions, labels)


@extend_schema(
    parameters=[
        OpenApiParameter("project", str),
        OpenApiParameter("metric", str, enum=list(FORECAST_METRICS)),
        OpenApiParameter("horizon", int, enum=[7, 30]),
    ]
)
class ForecastList(FrameList):
    """Daily actuals of the last 8 weeks and a forecast for the next 7 or 30 days, with an 80 %
    interval."""

    serializer_class = serializers.ForecastSerializer
    csv_filename = "forecast.csv"

    def frame(self, request: Request) -> pd.DataFrame:
        return forecast_frame(request)


def forecast_frame(request: Request) -> pd.DataFrame:
    metric = _choice(request, "metric", FORECAST_METRICS, "sessions")
    horizon = int(_choice(request, "horizon", ("7", "30"), "7"))
    now = timezone.now()
    rollups = queries.rollup_frame(
        project_of(request),
        granularity="day",
        since=now - timedelta(weeks=8),
        until=now,
    )
    return forecast_daily(daily_totals(rollups, metric=metric), horizon=horizon, now=now)
