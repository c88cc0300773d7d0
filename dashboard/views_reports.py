"""The reports page: the daily/weekly schedule, the report builder, making a report now and
serving a stored report."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from analytics import queries, store
from analytics.reporting import make_report
from dashboard.forms_analytics import ReportBuilderForm, ReportScheduleForm
from dashboard.pages import PAGE_SIZE, Nav, project_page
from ingest import access, audit
from ingest.models import AuditEntry

SCHEDULE_FIELDS = ("is_daily", "is_weekly", "email_to")


@login_required
@project_page
def reports(request: HttpRequest, nav: Nav) -> HttpResponse:
    if request.method == "POST":
        access.require(request.user, nav.project.pk, access.Action.EDIT_REPORT_SCHEDULE)
    schedule = queries.report_schedule(nav.project.pk)
    before = {name: getattr(schedule, name) for name in SCHEDULE_FIELDS}
    form = ReportScheduleForm(request.POST or None, instance=schedule)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            store.save_report_schedule(nav.project.pk, **form.cleaned_data)
            audit.record(
                request,
                AuditEntry.Action.REPORT_SCHEDULE,
                project_id=nav.project.pk,
                target="report schedule",
                changes=audit.diff(before, {f: form.cleaned_data[f] for f in SCHEDULE_FIELDS}),
            )
        messages.success(request, "Report schedule saved.")
        return redirect("dashboard:reports")
    all_reports = queries.reports_for_projects([nav.project.pk])
    context = {
        "nav": nav,
        "form": form,
        "builder": ReportBuilderForm(
            initial={
                "grouping": "day",
                "metrics": ["count", "error_rate", "latency_p95_ms", "cost"],
            }
        ),
        "builder_url": reverse("api:report-builder"),
        "page": Paginator(all_reports, PAGE_SIZE).get_page(request.GET.get("page")),
    }
    return render(request, "dashboard/reports.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
@project_page
def report_make(request: HttpRequest, nav: Nav) -> HttpResponse:
    """Make (or remake) the latest daily or weekly report now."""
    access.require(request.user, nav.project.pk, access.Action.MAKE_REPORT)
    period = request.POST.get("period", "daily")
    if period not in ("daily", "weekly"):
        raise Http404("No such period")
    report = make_report(nav.project.pk, period, now=timezone.now())
    audit.record(
        request,
        AuditEntry.Action.REPORT_MAKE,
        project_id=nav.project.pk,
        target=f"{period} report from {report.period_start:%Y-%m-%d}",
    )
    messages.success(request, f"The {period} report from {report.period_start:%Y-%m-%d} is ready.")
    return redirect("dashboard:reports")


@login_required
@require_GET
def report_html(request: HttpRequest, pk: int) -> HttpResponse:
    report = queries.report_for_projects(queries.projects_for_user(request.user), pk)
    if report is None:
        raise Http404("No such report")
    # The stored document was rendered by templates/analytics/report.html with auto-escaping on;
    # it is served as the page itself, never inserted into another template.
    response = HttpResponse(report.html_text, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response
