"""Analytics pages: trends, anomalies and incidents, error clusters, and cohorts with forecasts.
Each resolves the project, reads (analytics.queries), computes (pure modules), charts
(dashboard.charts) and renders; actions write through analytics.store. Alerts and reports have
their own modules (views_alerts.py, views_reports.py)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import pandas as pd
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from analytics import queries, store
from analytics.anomalies import METRICS as ANOMALY_METRICS
from analytics.cohorts import (
    FORECAST_METRICS,
    cohort_labels,
    compare_cohorts,
    daily_totals,
    forecast_daily,
)
from analytics.models import Anomaly, Incident
from analytics.overview import RANGES, TimeWindow, time_window
from analytics.scores import score_trend
from analytics.trends import merge_rollups, resource_trend, trend_series
from dashboard import charts
from dashboard.forms_analytics import CohortForm
from dashboard.pages import PAGE_SIZE, Nav, api_url, project_page
from ingest import access, audit
from ingest.models import AuditEntry, Session

TREND_GROUPS = {"agent": ("llm", "tool"), "model": ("llm",), "tool": ("tool",)}
ANOMALY_STATES = ("open", "acknowledged", "resolved", "all")
INCIDENT_STATES = ("open", "closed", "all")
FORECAST_HORIZONS = (7, 30)


def _figure(fig: Any) -> dict[str, Any]:
    return charts.figure_data(fig)


# --- Trends ------------------------------------------------------------------------------------


def _granularity(window: TimeWindow) -> str:
    return "hour" if window.until - window.since <= timedelta(days=7) else "day"


def _series_url(nav: Nav, window: TimeWindow, granularity: str, group: str, kinds: str) -> str:
    return api_url(
        "api:trend-series",
        project=nav.project.slug,
        group=group,
        kind=kinds,
        granularity=granularity,
        since=window.since.isoformat(),
        until=window.until.isoformat(),
        format="csv",
    )


def _trend_charts(rollups: pd.DataFrame, group: str) -> dict[str, Any]:
    """Every chart of the trends page, or None for one with no data."""
    kinds = TREND_GROUPS[group]
    latency = errors = trend_series(rollups, group=group, kinds=kinds)
    # Counts, tokens and cost only: no histograms to merge (most of the page's CPU).
    llm_by_model = trend_series(rollups, group="model", kinds=("llm",), percentiles=False)
    by_agent = trend_series(rollups, group="agent", percentiles=False)
    rows = rollups[rollups["kind"].isin(kinds)] if len(rollups) else rollups
    named = rows[rows[group] != ""] if len(rows) else rows
    distribution = (
        merge_rollups(named.assign(group=named[group]), by=["group"]) if len(named) else None
    )
    has = len(latency) > 0
    return {
        "latency": _figure(
            charts.series_chart(latency, "latency_p95_ms", y_title="p95 ms", hover="%{y:,.0f} ms")
        )
        if has
        else None,
        "distribution": _figure(charts.latency_percentiles_chart(distribution))
        if distribution is not None and len(distribution)
        else None,
        "errors": _figure(
            charts.series_chart(
                errors, "error_rate", y_title="error rate %", hover="%{y:.1f} %", scale=100
            )
        )
        if has
        else None,
        "rate_limits": _figure(
            charts.series_chart(
                llm_by_model, "rate_limit_count", y_title="429s", hover="%{y:,.0f}", bars=True
            )
        )
        if llm_by_model["rate_limit_count"].sum()
        else None,
        "tokens": _figure(
            charts.series_chart(
                llm_by_model.assign(
                    tokens=llm_by_model["prompt_tokens"] + llm_by_model["completion_tokens"]
                ),
                "tokens",
                y_title="tokens",
                hover="%{y:,.0f}",
                bars=True,
            )
        )
        if len(llm_by_model)
        else None,
        "cost_model": _figure(
            charts.series_chart(llm_by_model, "cost", y_title="USD", hover="$%{y:,.4f}", bars=True)
        )
        if len(llm_by_model)
        else None,
        "cost_agent": _figure(
            charts.series_chart(
                by_agent[by_agent["group"] != ""],
                "cost",
                y_title="USD",
                hover="$%{y:,.4f}",
                bars=True,
            )
        )
        if by_agent["cost"].sum()
        else None,
        "sessions": _session_chart(rollups),
    }


def _session_chart(rollups: pd.DataFrame) -> dict[str, Any] | None:
    """Sessions per bucket: p50 and p95 duration, and steps per session."""
    sessions = trend_series(rollups, group=None, kinds=("session",))
    if len(sessions) == 0:
        return None
    long = pd.concat(
        [
            sessions.assign(group="p50 duration (s)", value=sessions["latency_p50_ms"] / 1000),
            sessions.assign(group="p95 duration (s)", value=sessions["latency_p95_ms"] / 1000),
            sessions.assign(
                group="steps per session", value=sessions["step_count"] / sessions["count"]
            ),
        ],
        ignore_index=True,
    )
    return _figure(charts.series_chart(long, "value", y_title="seconds / steps", hover="%{y:,.1f}"))


@login_required
@require_GET
@project_page
def trends(request: HttpRequest, nav: Nav) -> HttpResponse:
    window = time_window(request.GET.get("range", "7d"), now=timezone.now())
    group = request.GET.get("group", "model")
    group = group if group in TREND_GROUPS else "model"
    granularity = _granularity(window)
    rollups = queries.rollup_frame(
        nav.project.pk,
        granularity=granularity,
        since=window.since,
        until=window.until,
    )
    samples = queries.metric_sample_frame(nav.project.pk, since=window.since, until=window.until)
    resources = resource_trend(samples, freq="1h" if granularity == "hour" else "1D")
    given = queries.score_frame(nav.project.pk, since=window.since, until=window.until)
    score_means = score_trend(given, freq="1h" if granularity == "hour" else "1D")
    csv = lambda g, k: _series_url(nav, window, granularity, g, k)  # noqa: E731
    context = {
        "nav": nav,
        "window": window,
        "ranges": list(RANGES),
        "group": group,
        "groups": list(TREND_GROUPS),
        "granularity": granularity,
        "charts": _trend_charts(rollups, group),
        "resources": _figure(charts.resource_chart(resources)) if len(resources) else None,
        "scores": _figure(charts.score_chart(score_means)) if len(score_means) else None,
        "csv": {
            "latency": csv(group, ",".join(TREND_GROUPS[group])),
            "model": csv("model", "llm"),
            "agent": csv("agent", ""),
            "sessions": csv("", "session"),
            "metrics": api_url("api:metric-list", project=nav.project.slug, format="csv"),
            "scores": api_url(
                "api:score-list",
                project=nav.project.slug,
                after=window.since.isoformat(),
                before=window.until.isoformat(),
                format="csv",
            ),
        },
    }
    return render(request, "dashboard/trends.html", context)


# --- Anomalies ---------------------------------------------------------------------------------


def _examples(flagged: Sequence[Anomaly | Incident]) -> dict[int, list[Session]]:
    """Each anomaly's or incident's example sessions that still exist, by its pk (one query)."""
    sessions = queries.sessions_by_pk([pk for f in flagged for pk in f.example_session_ids or []])
    return {
        f.pk: [sessions[pk] for pk in f.example_session_ids or [] if pk in sessions]
        for f in flagged
    }


def _status_listing(
    request: HttpRequest,
    nav: Nav,
    rows: QuerySet[Any],
    *,
    states: Sequence[str],
    default: str,
    api: str,
) -> tuple[str, QuerySet[Any], str]:
    """`?status=` (`default` unless one of `states`), the rows in it, and their CSV link."""
    state = request.GET.get("status", default)
    state = state if state in states else default
    rows = rows if state == "all" else rows.filter(status=state)
    shown = "" if state == "all" else state
    return state, rows, api_url(api, project=nav.project.slug, status=shown, format="csv")


@login_required
@require_GET
@project_page
def anomalies(request: HttpRequest, nav: Nav) -> HttpResponse:
    state, rows, csv_url = _status_listing(
        request,
        nav,
        queries.anomalies_for_projects([nav.project.pk]),
        states=ANOMALY_STATES,
        default="open",
        api="api:anomaly-list",
    )
    metric = request.GET.get("metric", "")
    rows = rows.filter(metric=metric) if metric in ANOMALY_METRICS else rows
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    listed = list(page.object_list)
    examples = _examples(listed)
    timeline = pd.DataFrame(
        list(rows.values("window_start", "metric", "score", "status", "explanation")[:500])
    )
    context = {
        "nav": nav,
        "page": page,
        "rows": [{"anomaly": a, "examples": examples[a.pk]} for a in listed],
        "state": state,
        "states": ANOMALY_STATES,
        "metric": metric,
        "metrics": ANOMALY_METRICS,
        "timeline": _figure(charts.anomaly_timeline_chart(timeline)) if len(timeline) else None,
        "csv_url": csv_url,
    }
    return render(request, "dashboard/anomalies.html", context)


@login_required
@require_GET
@project_page
def incidents(request: HttpRequest, nav: Nav) -> HttpResponse:
    state, rows, csv_url = _status_listing(
        request,
        nav,
        queries.incidents_for_projects([nav.project.pk]),
        states=INCIDENT_STATES,
        default="all",
        api="api:incident-list",
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    listed = list(page.object_list)
    flags = queries.anomalies_of_incidents([i.pk for i in listed])
    examples = _examples(listed)
    context = {
        "nav": nav,
        "page": page,
        "rows": [
            {
                "incident": i,
                "flags": flags.get(i.pk, []),
                "examples": examples[i.pk],
            }
            for i in listed
        ],
        "state": state,
        "states": INCIDENT_STATES,
        "csv_url": csv_url,
    }
    return render(request, "dashboard/incidents.html", context)


@login_required
@require_POST
def anomaly_status(request: HttpRequest, pk: int) -> HttpResponse:
    anomaly = queries.anomaly_for_projects(queries.projects_for_user(request.user), pk)
    if anomaly is None:
        raise Http404("No such anomaly")
    access.require(request.user, anomaly.project_id, access.Action.SET_ANOMALY_STATUS)
    status = request.POST.get("status", "")
    if status not in Anomaly.Status.values:
        messages.error(request, "Unknown status.")
    else:
        with transaction.atomic():
            store.set_anomaly_status(anomaly, status, user=request.user)
            record_anomaly_status(request, anomaly, status)
        messages.success(request, f"Anomaly #{anomaly.pk} is now {status}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("dashboard:anomalies")
    return redirect(back)


def record_anomaly_status(request: Any, anomaly: Anomaly, status: str) -> None:
    """The audit entry of a status change (this page; api/views_analytics.py has its own)."""
    audit.record(
        request,
        AuditEntry.Action.ANOMALY_STATUS,
        project_id=anomaly.project_id,
        target=f"anomaly #{anomaly.pk} ({anomaly.metric})",
        changes=audit.diff({"status": anomaly.status}, {"status": status}),
    )


# --- Error clusters ----------------------------------------------------------------------------


@login_required
@require_GET
@project_page
def errors(request: HttpRequest, nav: Nav) -> HttpResponse:
    clusters = queries.error_clusters_for_projects([nav.project.pk])
    page = Paginator(clusters, PAGE_SIZE).get_page(request.GET.get("page"))
    top = pd.DataFrame(
        list(clusters.order_by("-count").values("pattern", "error_type", "count")[:12])
    )
    context = {
        "nav": nav,
        "page": page,
        "clusters": list(page.object_list),
        "chart": _figure(charts.cluster_chart(top)) if len(top) else None,
        "csv_url": api_url("api:error-cluster-list", project=nav.project.slug, format="csv"),
    }
    return render(request, "dashboard/errors.html", context)


# --- Cohorts and forecasts ---------------------------------------------------------------------


def _cohort_context(form: CohortForm, project_id: int) -> dict[str, Any]:
    data = form.cleaned_data
    now = timezone.now()
    sessions = queries.cohort_session_frame(
        project_id, since=now - timedelta(days=data["days"]), until=now
    )
    labels = cohort_labels(
        sessions,
        split=data["split"],
        key=data["key"],
        a=data["a"],
        b=data["b"],
        change_at=data["change_at"],
    )
    differences = compare_cohorts(sessions, labels)
    frame = pd.DataFrame([asdict(d) for d in differences])
    return {
        "differences": differences,
        "cohort_chart": _figure(charts.cohort_chart(frame))
        if frame["relative"].notna().any()
        else None,
    }


def _forecast_charts(project_id: int, horizon: int) -> dict[str, Any]:
    now = timezone.now()
    rollups = queries.rollup_frame(
        project_id, granularity="day", since=now - timedelta(weeks=8), until=now
    )
    found = {}
    for metric, label in FORECAST_METRICS.items():
        frame = forecast_daily(daily_totals(rollups, metric=metric), horizon=horizon, now=now)
        found[metric] = (
            _figure(charts.forecast_chart(frame, y_title=label)) if frame["value"].sum() else None
        )
    return found


@login_required
@require_GET
@project_page
def compare(request: HttpRequest, nav: Nav) -> HttpResponse:
    form = CohortForm(request.GET if "split" in request.GET else None)
    horizon = (
        int(request.GET.get("horizon", "7")) if request.GET.get("horizon") in ("7", "30") else 7
    )
    params = request.GET.copy()
    params["project"] = nav.project.slug
    params["format"] = "csv"
    context = {
        "nav": nav,
        "form": form,
        "horizon": horizon,
        "horizons": FORECAST_HORIZONS,
        "forecasts": _forecast_charts(nav.project.pk, horizon),
        "forecast_csv": {
            m: api_url(
                "api:forecast-list",
                project=nav.project.slug,
                metric=m,
                horizon=horizon,
                format="csv",
            )
            for m in FORECAST_METRICS
        },
        "cohort_csv": f"{reverse('api:cohort-comparison')}?{params.urlencode()}",
        **(_cohort_context(form, nav.project.pk) if form.is_bound and form.is_valid() else {}),
    }
    return render(request, "dashboard/compare.html", context)
