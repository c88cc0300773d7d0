"""The overview page: the project's KPIs, activity, latency and cost charts and open anomalies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from analytics import deletion, queries
from analytics.overview import (
    RANGES,
    TimeWindow,
    activity_over_time,
    cost_by_model,
    llm_latency_over_time,
    overview_kpis,
    overview_rollups,
    time_window,
)
from dashboard import charts
from dashboard.pages import Nav, parse_time, project_page
from ingest.models import Project

OVERVIEW_ANOMALIES = 5


def _overview_charts(window: TimeWindow, rollups: Any) -> dict[str, Any]:
    activity = activity_over_time(rollups, window=window)
    latency = llm_latency_over_time(rollups, window=window)
    costs = cost_by_model(rollups)
    has_activity = bool(len(rollups))
    return {
        "activity": charts.figure_data(charts.activity_chart(activity)) if has_activity else None,
        "latency": (
            charts.figure_data(charts.latency_chart(latency)) if latency["calls"].sum() else None
        ),
        "cost": charts.figure_data(charts.cost_by_model_chart(costs)) if len(costs) else None,
    }


@login_required
@require_GET
@project_page
def overview(request: HttpRequest, nav: Nav) -> HttpResponse:
    window = time_window(
        request.GET.get("range"),
        now=timezone.now(),
        start=parse_time(request.GET.get("from")),
        end=parse_time(request.GET.get("to")),
    )
    since, until = window.since, window.until
    rollups = overview_rollups(
        *queries.window_rollup_frames(nav.project.pk, since=since, until=until)
    )
    context = {
        "nav": nav,
        "window": window,
        "ranges": list(RANGES),
        "kpis": overview_kpis(rollups),
        "charts": _overview_charts(window, rollups),
        "open_anomalies": queries.open_anomalies(nav.project.pk, limit=OVERVIEW_ANOMALIES),
        **_retention_notice(nav.project, since),
    }
    return render(request, "dashboard/overview.html", context)


def _retention_notice(project: Project, since: datetime) -> dict[str, Any]:
    """When the range reaches before the raw data retention removed: its days for the notice."""
    removed = project.raw_removed_before
    days = deletion.retention_of(project).raw_days
    return {"raw_retention_days": days if removed and since < removed else None}
