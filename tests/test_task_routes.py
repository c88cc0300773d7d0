"""Celery queues by kind (docs/deployment.md): every task has exactly one queue, and a worker
on the alerts queue delivers an alert while the analytics worker is stuck in a refresh."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import transaction

from analytics.models import PendingRefresh
from analytics.store import mark_refresh_pending
from analytics.tasks import evaluate_alerts_task, refresh_project_analytics_task
from config.celery import app
from tests.builders import make_alert_rule, make_project
from tests.conftest import CeleryWorker, celery_worker_env, start_celery_worker
from tests.waiting import DEADLINE

QUEUES = {"ingest", "analytics", "alerts", "reports"}


def our_task_names() -> set[str]:
    app.loader.import_default_modules()  # autodiscovery: every tasks.py the worker would load
    return {name for name in app.tasks if not name.startswith("celery.")}


def test_every_task_is_routed_to_one_of_the_four_queues() -> None:
    names = our_task_names()

    assert set(settings.CELERY_TASK_QUEUES) == QUEUES
    assert names - set(settings.CELERY_TASK_ROUTES) == set(), "tasks without a queue"
    assert set(settings.CELERY_TASK_ROUTES) - names == set(), "routes naming no task"
    for name in names:
        assert app.amqp.router.route({}, name)["queue"].name in QUEUES, name


def test_each_kind_of_work_has_its_own_queue() -> None:
    queue_of = {name: route["queue"] for name, route in settings.CELERY_TASK_ROUTES.items()}

    assert queue_of["analytics.tasks.summarize_and_analyze_sessions_task"] == "ingest"
    assert queue_of["analytics.tasks.refresh_project_analytics_task"] == "analytics"
    assert queue_of["analytics.tasks.evaluate_alerts_task"] == "alerts"
    assert queue_of["ingest.tasks.send_requeue_webhook_task"] == "alerts"
    assert queue_of["analytics.tasks.make_reports_task"] == "reports"


def test_every_beat_entry_names_a_routed_task() -> None:
    beat_tasks = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}

    assert beat_tasks <= set(settings.CELERY_TASK_ROUTES)


def test_a_periodic_task_expires_when_the_next_one_is_due() -> None:
    """A worker that fell behind drops a sweep still queued when the next is sent, instead of
    running a pile of sweeps that each redo the same work."""
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    for name, entry in schedule.items():
        assert entry["options"]["expires"] == entry["schedule"], name


alert_arrived = threading.Event()


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        alert_arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver_url() -> Iterator[str]:
    alert_arrived.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def queue_workers(transactional_db: None, tmp_path: Path) -> Iterator[dict[str, CeleryWorker]]:
    """One real worker on the analytics queue and one on the alerts queue, as in production,
    started side by side (each takes seconds to be ready)."""
    env = celery_worker_env()
    queues = ("analytics", "alerts")
    with ThreadPoolExecutor(len(queues)) as pool:
        # --purge: tasks left by earlier tests (debounced refreshes) name rows that are gone.
        starting = {
            queue: pool.submit(
                start_celery_worker, env, tmp_path / f"{queue}.log", "-Q", queue, "--purge"
            )
            for queue in queues
        }
    workers = {queue: f.result() for queue, f in starting.items() if f.exception() is None}
    try:
        for future in starting.values():
            future.result()  # a worker that did not start fails the test, after the cleanup
        yield workers
    finally:
        with ThreadPoolExecutor(len(queues)) as pool:
            list(pool.map(CeleryWorker.stop, workers.values()))


@pytest.mark.worker
def test_an_alert_is_delivered_while_an_analytics_refresh_is_stuck(
    queue_workers: dict[str, CeleryWorker], receiver_url: str
) -> None:
    """The refresh blocks on the project's pending-refresh row, which this test holds locked
    (as a long rollup would hold the analytics worker); the alert must arrive meanwhile."""
    project, _ = make_project(name="Busy")
    make_alert_rule(project, target=receiver_url, metric="session_count", threshold=-1.0)
    mark_refresh_pending({project.pk: project.created_at})

    with transaction.atomic():
        PendingRefresh.objects.select_for_update().get(project=project)
        refresh = refresh_project_analytics_task.delay(project.pk)
        queue_workers["analytics"].wait_for_log(f"[{refresh.id}] received")
        alert = evaluate_alerts_task.delay()

        assert alert_arrived.wait(timeout=DEADLINE), "the alert waited for the analytics task"
        queue_workers["alerts"].wait_for_log(f"[{alert.id}] succeeded")
        assert f"[{refresh.id}] succeeded" not in queue_workers["analytics"].log()

    queue_workers["analytics"].wait_for_log(f"[{refresh.id}] succeeded")
