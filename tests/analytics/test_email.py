"""Reports and alerts by email (pytest-django's locmem backend: nothing leaves the machine)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from analytics.alerting import evaluate_rule
from analytics.models import AlertRule, Report
from analytics.refresh import refresh_project
from analytics.reporting import make_due_reports
from analytics.store import save_report_schedule
from tests.builders import make_alert_rule, make_project, make_session

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)  # a Tuesday


def test_due_reports_are_made_once_and_emailed_with_their_csv(mailoutbox: list[Any]) -> None:
    project, _ = make_project(name="Mail")
    make_session(project, started_at=NOW - timedelta(hours=12), spans=3, name="<b>bold</b>")
    refresh_project(project.pk, since=NOW - timedelta(days=8), now=NOW)
    save_report_schedule(project.pk, is_daily=True, is_weekly=True, email_to="ops@example.com")

    made = make_due_reports(now=NOW)
    again = make_due_reports(now=NOW + timedelta(hours=1))

    assert (made, again) == (2, 0)
    assert sorted(Report.objects.values_list("period", flat=True)) == ["daily", "weekly"]
    daily = next(m for m in mailoutbox if "daily" in m.subject)
    assert daily.to == ["ops@example.com"]
    assert daily.attachments[0][0] == "report-daily-2026-11-23.csv"
    html = daily.alternatives[0][0]
    assert "Mail: daily report" in html
    assert "<b>bold</b>" not in html


def test_an_email_alert_is_sent_when_a_rule_fires(mailoutbox: list[Any]) -> None:
    project, _ = make_project(name="Alerted")
    make_session(project, started_at=NOW - timedelta(minutes=5), spans=2, failed=2)
    rule = make_alert_rule(
        project,
        name="All failing",
        channel=AlertRule.Channel.EMAIL,
        target="a@example.com, b@example.com",
    )

    event = evaluate_rule(rule, now=NOW)

    assert event is not None and event.state == "alert"
    assert [m.to for m in mailoutbox] == [["a@example.com", "b@example.com"]]
    assert mailoutbox[0].subject.startswith("[ALERT] All failing: error rate")
    rule.refresh_from_db()
    assert (rule.state, rule.last_notified_at) == ("alert", NOW)
    assert evaluate_rule(rule, now=NOW + timedelta(minutes=1)) is None


def test_a_mail_server_that_refuses_stops_no_other_report_and_is_tried_again(
    settings: Any, mailoutbox: list[Any]
) -> None:
    """A real SMTP connection to a closed loopback port: the first project's email fails, the
    second project's report is still made, and the unsent one is sent by a later beat."""
    first, _ = make_project(name="First")
    second, _ = make_project(name="Second")
    for project in (first, second):
        save_report_schedule(project.pk, is_daily=True, is_weekly=False, email_to="ops@example.com")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", closed_port(), 5

    made = make_due_reports(now=NOW)

    assert made == 2
    assert Report.objects.filter(emailed_at__isnull=True).count() == 2
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert make_due_reports(now=NOW + timedelta(hours=1)) == 0
    assert len(mailoutbox) == 2
    assert not Report.objects.filter(emailed_at__isnull=True).exists()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
