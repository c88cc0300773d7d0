"""Scheduled and on-demand reports: read rollups (analytics.queries), summarise
(analytics.reports), render the HTML summary, save (analytics.store) and email.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from analytics import queries, store
from analytics.models import Report, ReportSchedule
from analytics.reports import (
    REPORT_METRICS,
    period_bounds,
    report_summary,
    report_table,
    table_csv,
    table_rows,
)
from analytics.scores import score_lines

logger = logging.getLogger(__name__)


def make_report(project_id: int, period: str, *, now: datetime) -> Report:
    """The report of the last complete day or week before `now`; made again if it exists."""
    since, until = period_bounds(period, now=now)
    rollups = queries.rollup_frame(project_id, granularity="hour", since=since, until=until)
    previous = queries.rollup_frame(
        project_id, granularity="hour", since=since - (until - since), until=since
    )
    summary = report_summary(rollups, previous, since=since, until=until)
    table = report_table(rollups, grouping="all", metrics=list(REPORT_METRICS))
    project = queries.project_list([project_id]).get()
    scores = score_lines(
        queries.score_frame(project_id, since=since, until=until),
        queries.score_frame(project_id, since=since - (until - since), until=since),
    )
    html = render_to_string(
        "analytics/report.html",
        {
            "summary": summary,
            "project": project,
            "period": period,
            "site_url": settings.SITE_URL.rstrip("/"),
            "model_rows": table_rows(summary.by_model, "model"),
            "agent_rows": table_rows(summary.by_agent, "agent"),
            "tool_rows": table_rows(summary.by_tool, "tool"),
            "score_lines": scores,
            "scores_csv": "/api/v1/scores/?"
            + urlencode(
                {
                    "project": project.slug,
                    "after": since.isoformat(),
                    "before": until.isoformat(),
                    "format": "csv",
                }
            ),
        },
    )
    return store.save_report(
        project_id,
        period=period,
        period_start=since,
        period_end=until,
        csv_text=table_csv(table),
        html_text=html,
    )


def email_report(report: Report, schedule: ReportSchedule, *, now: datetime) -> bool:
    """Send the report (HTML body, CSV attached) to the schedule's addresses, if any."""
    recipients = [a.strip() for a in schedule.email_to.split(",") if a.strip()]
    if not recipients:
        return False
    subject = f"Agent Observatory {report.period} report from {report.period_start:%Y-%m-%d}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=f"{subject}: see the attached CSV, or {settings.SITE_URL.rstrip('/')}/reports/",
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=recipients,
    )
    message.attach_alternative(report.html_text, "text/html")
    message.attach(
        f"report-{report.period}-{report.period_start:%Y-%m-%d}.csv", report.csv_text, "text/csv"
    )
    message.send()
    store.mark_report_emailed(report, at=now)
    return True


def make_due_reports(*, now: datetime) -> int:
    """Beat: every project's daily and weekly reports that are due and not made yet."""
    made = 0
    for schedule in queries.report_schedules():
        periods = [
            p for p, on in (("daily", schedule.is_daily), ("weekly", schedule.is_weekly)) if on
        ]
        for period in periods:
            since, _ = period_bounds(period, now=now)
            report = queries.report_of_period(
                schedule.project_id, period=period, period_start=since
            )
            if report is None:
                report = make_report(schedule.project_id, period, now=now)
                made += 1
            elif report.emailed_at is not None:
                continue
            _email_without_stopping(report, schedule, now=now)
    return made


def _email_without_stopping(report: Report, schedule: ReportSchedule, *, now: datetime) -> None:
    """One project's mail server failing must not stop the other projects' reports; the report
    stays unsent and the next beat tries again."""
    try:
        email_report(report, schedule, now=now)
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("report %s of project %s not emailed: %s", report.pk, report.project_id, exc)
