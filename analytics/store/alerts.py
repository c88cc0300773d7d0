"""Writes of the user-edited alert rules and report schedules, alert events and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from analytics.models import AlertEvent, AlertRule, Report, ReportSchedule


def save_alert_rule(rule: AlertRule) -> AlertRule:
    """Create or update a rule (the form has validated it); a changed rule starts again at OK."""
    if rule.pk is not None:
        rule.state = AlertRule.State.OK
        rule.state_changed_at = None
        rule.last_notified_at = None
    rule.save()
    return rule


def delete_alert_rule(rule: AlertRule) -> None:
    rule.delete()


def record_alert_evaluation(
    rule: AlertRule,
    *,
    state: str,
    value: float | None,
    at: datetime,
    notified: bool,
) -> None:
    """Store a rule's latest evaluation: its state (and when it changed), value, last notice."""
    fields: dict[str, Any] = {"last_value": value, "last_evaluated_at": at, "state": state}
    if state != rule.state:
        fields["state_changed_at"] = at
    if notified:
        fields["last_notified_at"] = at
    AlertRule.objects.filter(pk=rule.pk).update(**fields)


def add_alert_event(
    rule: AlertRule,
    *,
    at: datetime,
    state: str,
    previous_state: str,
    value: float | None,
    message: str,
    is_test: bool = False,
) -> AlertEvent:
    return AlertEvent.objects.create(
        rule=rule,
        project_id=rule.project_id,
        at=at,
        state=state,
        previous_state=previous_state,
        value=value,
        message=message,
        is_test=is_test,
    )


def record_delivery(event: AlertEvent, *, error: str) -> None:
    """Whether the event's notification got through; `error` empty means it did."""
    AlertEvent.objects.filter(pk=event.pk).update(is_delivered=not error, delivery_error=error)


def save_report(
    project_id: int,
    *,
    period: str,
    period_start: datetime,
    period_end: datetime,
    csv_text: str,
    html_text: str,
) -> Report:
    """Create or replace the report of one project, period and start. Idempotent."""
    report, _ = Report.objects.update_or_create(
        project_id=project_id,
        period=period,
        period_start=period_start,
        defaults={"period_end": period_end, "csv_text": csv_text, "html_text": html_text},
    )
    return report


def mark_report_emailed(report: Report, *, at: datetime) -> None:
    Report.objects.filter(pk=report.pk).update(emailed_at=at)


def save_report_schedule(
    project_id: int, *, is_daily: bool, is_weekly: bool, email_to: str
) -> ReportSchedule:
    schedule, _ = ReportSchedule.objects.update_or_create(
        project_id=project_id,
        defaults={"is_daily": is_daily, "is_weekly": is_weekly, "email_to": email_to},
    )
    return schedule
