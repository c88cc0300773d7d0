"""One project's slow webhook does not hold back another project's alert: the evaluation
delivers its notifications side by side. Two real receivers on loopback; the slow one answers
only once the other has received its alert, so delivering one after the other cannot pass."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.utils import timezone

from analytics.alerting import evaluate_rules
from analytics.models import AlertEvent
from tests.builders import make_alert_rule, make_project
from tests.waiting import DEADLINE

pytestmark = pytest.mark.django_db(transaction=True)

fast_arrived = threading.Event()
slow_saw_fast: list[bool] = []


class Fast(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        fast_arrived.set()
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Slow(Fast):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        slow_saw_fast.append(fast_arrived.wait(timeout=DEADLINE / 4))
        self.send_response(204)
        self.end_headers()


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def fast_url() -> Iterator[str]:
    yield from _serve(Fast)


@pytest.fixture
def slow_url() -> Iterator[str]:
    yield from _serve(Slow)


def test_a_slow_webhook_does_not_hold_back_another_projects_alert(
    settings: Any, fast_url: str, slow_url: str
) -> None:
    fast_arrived.clear()
    slow_saw_fast.clear()
    settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = True
    settings.OBSERVATORY_WEBHOOK_TIMEOUT_SECONDS = DEADLINE
    # "sessions started > -1" alerts at once, even on an empty window.
    slow_rule = make_alert_rule(
        make_project(name="Slow")[0], target=slow_url, metric="session_count", threshold=-1.0
    )
    fast_rule = make_alert_rule(
        make_project(name="Fast")[0], target=fast_url, metric="session_count", threshold=-1.0
    )

    events = evaluate_rules([slow_rule, fast_rule], now=timezone.now())

    assert len(events) == 2
    assert slow_saw_fast == [True], "the slow webhook was delivered before the other started"
    assert AlertEvent.objects.filter(is_delivered=True).count() == 2
