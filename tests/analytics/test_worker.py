"""The analytics tasks in a real Celery worker (real Redis broker, PostgreSQL): sessions sent
through the ingest API get detector flags and rollups; a history with an injected slowdown gets
an anomaly flag; an alert rule fires a signed webhook to a loopback receiver."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from analytics.alerts import SIGNATURE_HEADER, is_valid_signature
from analytics.models import AlertEvent, Anomaly, Rollup, SessionFlag
from analytics.store import mark_refresh_pending
from analytics.tasks import evaluate_alerts_task, refresh_project_analytics_task
from ingest.models import ApiKey, Project, Session, Span
from observatory_sdk import Client
from tests.analytics.test_refresh import NOW, _store_synthetic
from tests.builders import make_alert_rule, make_session
from tests.waiting import wait_until

pytestmark = pytest.mark.worker

DEBOUNCE_SECONDS = "1"


@pytest.fixture(scope="module", autouse=True)
def _short_debounce() -> Iterator[None]:
    """The worker of this module refreshes a project one second after the batch that changed
    it (autouse module fixtures come before the module's worker fixture)."""
    old = os.environ.get("OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS")
    os.environ["OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS"] = DEBOUNCE_SECONDS
    yield
    if old is None:
        os.environ.pop("OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS")
    else:
        os.environ["OBSERVATORY_ANALYTICS_DEBOUNCE_SECONDS"] = old


def test_a_looping_session_sent_through_the_api_gets_flags_and_rollups(
    live_server: Any, celery_worker: Any
) -> None:
    project = Project.objects.create(name="Loop", slug="loop")
    _, key = ApiKey.generate(project)
    client = Client(key, live_server.url, flush_interval=0.1)
    session_id = client.start_session(name="stuck agent", user_query="find it")
    for _ in range(5):
        client.event(
            session_id,
            "tool",
            "web_fetch",
            params={"url": "https://example.com/same"},
            started_at=time.time() - 2,
            ended_at=time.time() - 1,
        )
    client.message(session_id, "user", "find it")
    client.end_session(session_id, "fail", reason="gave up")
    assert client.flush(timeout=20)
    client.close()

    flags = wait_until(
        lambda: set(SessionFlag.objects.values_list("detector", flat=True)),
        what="the session's detector flags",
    )
    assert flags == {"tool_loop", "no_final_answer"}
    session = Session.objects.get(external_id=session_id)
    assert SessionFlag.objects.get(detector="tool_loop").session == session
    rollup = wait_until(
        lambda: Rollup.objects.filter(project=project, granularity="hour", kind="tool").first(),
        what="the hourly tool rollup",
    )
    assert (rollup.tool, rollup.count) == ("web_fetch", 5)


def test_a_refresh_in_the_worker_flags_an_injected_slowdown(celery_worker: Any) -> None:
    from analytics.synthetic import Injection

    project = Project.objects.create(name="History", slug="history")
    # The task judges the last 48 hours before the real clock, so the history ends at the latest
    # 12:30 UTC (a fixed date would fall out of that window as the calendar moves on); the same
    # time of day as test_refresh's NOW keeps the synthetic traffic of the slow hours the same.
    now = timezone.now().replace(hour=NOW.hour, minute=NOW.minute, second=0, microsecond=0)
    if now > timezone.now():
        now -= timedelta(days=1)
    start = now - timedelta(hours=22, minutes=30)
    _store_synthetic(project, Injection("tool", "search", "latency_p95", start, 3, 4.0), now=now)
    first = Span.objects.filter(project=project).order_by("started_at").first()
    assert first is not None
    mark_refresh_pending({project.pk: first.started_at})
    log_start = celery_worker.log_size()

    task = refresh_project_analytics_task.delay(project.pk)

    celery_worker.wait_for_log(f"[{task.id}] succeeded", start=log_start)
    anomaly = Anomaly.objects.filter(project=project, subject="search").first()
    assert anomaly is not None, "the refresh ran and flagged nothing"
    assert anomaly.explanation.startswith("p95 latency of tool search was ")
    assert anomaly.example_session_ids


def test_an_import_of_older_hours_is_judged_by_the_worker_without_a_command(
    celery_worker: Any,
) -> None:
    """Nine days arrive at once with a slowdown five days back, beyond the live refresh's 48
    hours: the task judges those, remembers the rest and queues itself again until none is
    left, so the slowdown is flagged without recompute_analytics."""
    from analytics.refresh import MAX_ANOMALY_LOOKBACK
    from analytics.store import has_unjudged
    from analytics.synthetic import Injection

    project = Project.objects.create(name="Import", slug="import")
    now = timezone.now().replace(hour=NOW.hour, minute=NOW.minute, second=0, microsecond=0)
    if now > timezone.now():
        now -= timedelta(days=1)
    start = now - timedelta(days=5, hours=-2, minutes=30)  # 15:00 UTC, as in test_incidents_db
    assert start < timezone.now() - MAX_ANOMALY_LOOKBACK
    _store_synthetic(project, Injection("tool", "search", "latency_p95", start, 3, 4.0), now=now)
    first = Span.objects.filter(project=project).order_by("started_at").first()
    assert first is not None
    mark_refresh_pending({project.pk: first.started_at})

    refresh_project_analytics_task.delay(project.pk)

    anomaly = wait_until(
        lambda: Anomaly.objects.filter(project=project, subject="search").first(),
        what="the flag of the slowdown five days back",
    )
    assert start <= anomaly.window_start < start + timedelta(hours=3)
    wait_until(lambda: not has_unjudged(project.pk), what="the backlog to be judged")


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[bytes, dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((body, dict(self.headers)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    """A loopback HTTP server that keeps every POST; yields its URL."""
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


def test_an_alert_rule_fires_a_signed_webhook_from_the_worker(
    celery_worker: Any, receiver: str
) -> None:
    project = Project.objects.create(name="Alerting", slug="alerting")
    make_session(project, started_at=timezone.now() - timedelta(minutes=10), spans=4, failed=3)
    rule = make_alert_rule(
        project, name="Too many errors", threshold=0.5, target=receiver, secret="s3cret"
    )

    evaluate_alerts_task.delay()

    body, headers = wait_until(
        lambda: Receiver.received[0] if Receiver.received else None, what="the webhook request"
    )
    assert is_valid_signature(body, "s3cret", headers[SIGNATURE_HEADER])
    assert not is_valid_signature(body, "wrong", headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert (payload["rule"], payload["state"], payload["previous_state"]) == (
        "Too many errors",
        "alert",
        "ok",
    )
    assert payload["value"] == 0.75
    assert payload["message"].startswith("[ALERT] Too many errors: error rate of all events")
    event = wait_until(
        lambda: AlertEvent.objects.filter(rule=rule, is_delivered=True).first(),
        what="the delivered alert event",
    )
    assert event.state == "alert"
