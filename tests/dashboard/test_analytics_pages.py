"""The analytics pages through Django's test client: trends, anomalies, errors, alerts, reports,
cohorts and forecasts, the flag badges on sessions, and agent text shown escaped."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from analytics.models import AlertEvent, AlertRule, Anomaly, Report, SessionFlag
from analytics.refresh import detect_session_failures, refresh_project, regroup_incidents
from ingest.models import Span
from tests.builders import (
    make_alert_rule,
    make_anomaly,
    make_project,
    make_session,
    make_span,
    make_user,
)

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def user() -> Any:
    return make_user()


@pytest.fixture
def project(user: Any) -> Any:
    return make_project(name="Pages", user=user)[0]


@pytest.fixture
def client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def activity(project: Any) -> Any:
    """Two sessions an hour ago, one with a failing tool whose message carries a script tag, then
    a refresh: rollups, an error cluster."""
    now = timezone.now()
    started = now - timedelta(hours=1)
    session = make_session(project, started_at=started, spans=4, llm_spans=2, name=SCRIPT)
    make_span(
        session,
        name="web_fetch",
        started_at=started + timedelta(seconds=30),
        status=Span.Status.ERROR,
        error_type="ConnectionError",
        error_message=f"fetch of {SCRIPT} failed after 3 tries",
    )
    make_session(project, started_at=started + timedelta(minutes=5), spans=3, model="claude")
    refresh_project(project.pk, since=started - timedelta(days=1), now=now)
    return session


def chart_ids(html: str) -> list[str]:
    return [part.split('"')[0] for part in html.split('data-chart="')[1:]]


def test_the_trends_page_draws_latency_tokens_cost_and_error_charts(
    client: Client, activity: Any
) -> None:
    response = client.get("/trends/?range=24h&group=model")

    assert response.status_code == 200
    html = response.content.decode()
    for chart in (
        "chart-trend-latency",
        "chart-trend-distribution",
        "chart-trend-errors",
        "chart-trend-tokens",
        "chart-trend-cost-model",
        "chart-trend-cost-agent",
        "chart-trend-sessions",
    ):
        assert chart in chart_ids(html)
    assert 'data-csv-url="/api/v1/trends/series/?project=pages&amp;group=model' in html


def test_the_trends_page_of_an_empty_project_says_so(client: Client, project: Any) -> None:
    response = client.get("/trends/")

    assert response.status_code == 200
    assert chart_ids(response.content.decode()) == []
    assert "No data in this range." in response.content.decode()


def test_an_anomaly_explanation_with_agent_text_is_shown_escaped(
    client: Client, project: Any
) -> None:
    session = make_session(project, name="slow one")
    make_anomaly(
        project,
        explanation=f"p95 latency of tool {SCRIPT} was 4.1 s",
        subject=SCRIPT,
        example_session_ids=[session.pk],
    )

    html = client.get("/anomalies/").content.decode()

    assert SCRIPT not in html
    assert "p95 latency of tool &lt;script&gt;alert(1)&lt;/script&gt; was 4.1 s" in html
    assert f'href="/sessions/{session.pk}/"' in html
    assert "chart-anomaly-timeline" in chart_ids(html)


def test_incidents_are_listed_with_their_flags_and_agent_text_escaped(
    client: Client, project: Any
) -> None:
    session = make_session(project, name="slow one")
    anomaly = make_anomaly(
        project,
        explanation=f"p95 latency of tool {SCRIPT} was 4.1 s",
        subject=SCRIPT,
        example_session_ids=[session.pk],
    )
    regroup_incidents(project.pk, since=anomaly.window_start, now=anomaly.window_end)

    html = client.get("/incidents/").content.decode()

    assert SCRIPT not in html
    assert html.count("p95 latency of tool &lt;script&gt;alert(1)&lt;/script&gt; was 4.1 s") == 2
    assert f'href="/anomalies/?status=all#anomaly-{anomaly.pk}"' in html
    assert f'href="/sessions/{session.pk}/"' in html
    assert 'href="/api/v1/incidents/?project=' in html


def test_an_anomaly_is_acknowledged_then_resolved(client: Client, project: Any) -> None:
    anomaly = make_anomaly(project)

    client.post(f"/anomalies/{anomaly.pk}/status/", {"status": "acknowledged"})
    assert Anomaly.objects.get().status == "acknowledged"
    client.post(f"/anomalies/{anomaly.pk}/status/", {"status": "resolved", "next": "//evil"})

    resolved = Anomaly.objects.get()
    assert resolved.status == "resolved"
    assert resolved.status_changed_at is not None
    assert "No open anomalies" in client.get("/anomalies/").content.decode()
    assert "Resolve" not in client.get("/anomalies/?status=resolved").content.decode()


def test_another_projects_anomaly_cannot_be_changed(client: Client) -> None:
    other, _ = make_project(name="Other")
    anomaly = make_anomaly(other)

    response = client.post(f"/anomalies/{anomaly.pk}/status/", {"status": "resolved"})

    assert response.status_code == 404
    assert Anomaly.objects.get().status == "open"


def test_error_clusters_show_their_example_escaped(client: Client, activity: Any) -> None:
    html = client.get("/errors/").content.decode()

    assert SCRIPT not in html
    assert "fetch of &lt;script&gt;alert(1)&lt;/script&gt; failed after 3 tries" in html
    assert "fetch of &lt;str&gt; failed after &lt;n&gt; tries" not in html  # the pattern masks
    assert "chart-error-clusters" in chart_ids(html)


def test_sessions_carry_detector_and_anomaly_badges(client: Client, project: Any) -> None:
    session = make_session(project, spans=1)
    for _ in range(5):
        make_span(session, name="search", params={"q": "same"})
    detect_session_failures([session.pk])
    make_anomaly(project, example_session_ids=[session.pk])

    listing = client.get("/sessions/").content.decode()
    detail = client.get(f"/sessions/{session.pk}/").content.decode()

    assert '<span class="badge flag" title="tool search was called 5 times' in listing
    assert ">tool loop</span>" in listing
    assert "anomaly</a>" in listing
    assert "tool search was called 5 times with the same arguments" in detail
    assert "p95 latency of tool search was 4.1 s" in detail


def test_the_overview_lists_open_anomalies(client: Client, project: Any) -> None:
    make_anomaly(project, explanation=f"error rate of agent {SCRIPT} was 40 %")

    html = client.get("/").content.decode()

    assert "Open anomalies" in html
    assert "error rate of agent &lt;script&gt;" in html


def test_an_alert_rule_is_created_from_the_form(client: Client, project: Any) -> None:
    response = client.post(
        "/alerts/",
        {
            "name": "Slow search",
            "kind": "metric",
            "metric": "latency_p95_ms",
            "tool": "search",
            "window_minutes": 15,
            "comparator": ">",
            "threshold": 2000,
            "channel": "slack",
            "target": "https://hooks.example.com/x",
            "secret": "",
            "renotify_minutes": 60,
            "is_enabled": "on",
        },
    )

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.project, rule.metric, rule.tool, rule.channel) == (
        project,
        "latency_p95_ms",
        "search",
        "slack",
    )


def test_an_invalid_alert_rule_is_refused_with_its_errors(client: Client, project: Any) -> None:
    response = client.post(
        "/alerts/",
        {
            "name": "Bad",
            "kind": "metric",
            "metric": "",
            "window_minutes": 15,
            "comparator": ">",
            "threshold": 1,
            "channel": "webhook",
            "target": "ftp://example.com",
            "renotify_minutes": 0,
        },
    )

    assert response.status_code == 400
    html = response.content.decode()
    assert "A metric rule needs one of the metrics." in html
    assert "A webhook needs an http:// or https:// URL." in html
    assert not AlertRule.objects.exists()


def test_a_failed_test_notification_is_reported_and_kept_in_history(
    client: Client, project: Any
) -> None:
    rule = make_alert_rule(project, target="http://127.0.0.1:9/nothing-listens")

    response = client.post(f"/alerts/{rule.pk}/action/", {"action": "test"}, follow=True)

    assert "Test notification failed" in response.content.decode()
    event = AlertEvent.objects.get()
    assert (event.is_test, event.is_delivered) == (True, False)
    assert "may not reach 127.0.0.1" in event.delivery_error


def test_a_test_notification_to_a_closed_port_fails_when_private_addresses_are_allowed(
    client: Client, project: Any, settings: Any
) -> None:
    settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = True
    rule = make_alert_rule(project, target="http://127.0.0.1:9/nothing-listens")

    client.post(f"/alerts/{rule.pk}/action/", {"action": "test"})

    assert "ConnectionError" in AlertEvent.objects.get().delivery_error


def test_a_rule_is_disabled_and_deleted(client: Client, project: Any) -> None:
    rule = make_alert_rule(project)

    client.post(f"/alerts/{rule.pk}/action/", {"action": "toggle"})
    assert not AlertRule.objects.get().is_enabled
    client.post(f"/alerts/{rule.pk}/action/", {"action": "delete"})
    assert not AlertRule.objects.exists()


def test_a_report_is_made_viewed_and_downloaded(client: Client, activity: Any) -> None:
    client.post("/reports/make/", {"period": "daily"})
    report = Report.objects.get()

    page = client.get("/reports/").content.decode()
    html = client.get(f"/reports/{report.pk}/")
    csv = client.get(f"/api/v1/reports/{report.pk}/csv/")

    assert f'href="/reports/{report.pk}/"' in page
    assert html["Content-Security-Policy"].startswith("default-src 'none'")
    assert "daily report" in html.content.decode()
    assert csv.content.decode().startswith("bucket,agent,model,tool,kind,count,")


def test_the_report_schedule_is_saved(client: Client, project: Any) -> None:
    client.post("/reports/", {"is_daily": "on", "email_to": "ops@example.com"})

    from analytics.models import ReportSchedule

    schedule = ReportSchedule.objects.get(project=project)
    assert (schedule.is_daily, schedule.is_weekly, schedule.email_to) == (
        True,
        False,
        "ops@example.com",
    )


def test_cohorts_by_tag_are_compared_with_a_significance_test(client: Client, project: Any) -> None:
    now = timezone.now()
    for i in range(6):
        make_session(project, tags=["v1"], started_at=now - timedelta(hours=i + 1), spans=2)
        make_session(project, tags=["v2"], started_at=now - timedelta(hours=i + 1), spans=8)

    response = client.get("/compare/?split=tag&a=v1&b=v2&days=2&horizon=7")

    html = response.content.decode()
    assert response.status_code == 200
    assert "steps per session" in html
    assert "yes (p &lt; 0.05)" in html
    assert "chart-cohorts" in chart_ids(html)


def test_a_cohort_form_without_cohorts_shows_its_error(client: Client, project: Any) -> None:
    html = client.get("/compare/?split=tag&a=v1&days=2").content.decode()

    assert "Name both cohorts." in html


def test_forecasts_are_drawn_from_the_complete_days_before_today(
    client: Client, project: Any
) -> None:
    now = timezone.now()
    for days in (1, 2, 3):
        make_session(project, started_at=now - timedelta(days=days), spans=2)
    refresh_project(project.pk, since=now - timedelta(days=4), now=now)

    html = client.get("/compare/?horizon=30").content.decode()

    assert "chart-forecast-sessions" in chart_ids(html)
    assert "horizon=30" in html


def test_the_nav_links_every_analytics_page(client: Client, project: Any) -> None:
    html = client.get("/trends/").content.decode()

    for path, label in (
        ("/trends/", "Trends"),
        ("/anomalies/", "Anomalies"),
        ("/errors/", "Errors"),
        ("/alerts/", "Alerts"),
        ("/reports/", "Reports"),
    ):
        assert f'href="{path}"' in html
        assert f">{label}</a>" in html


def test_chart_data_escapes_agent_text_for_the_script_tag(client: Client, project: Any) -> None:
    session = make_session(project, started_at=timezone.now() - timedelta(hours=1), model=SCRIPT)
    assert session.started_at is not None
    refresh_project(project.pk, since=session.started_at, now=timezone.now())

    html = client.get("/trends/?range=24h&group=model").content.decode()

    assert SCRIPT not in html
    start = html.index('id="chart-trend-latency"')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert data["data"][0]["name"] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert not SessionFlag.objects.exists()
