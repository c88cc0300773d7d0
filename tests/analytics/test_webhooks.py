"""Outbound webhooks cannot reach our own network: loopback, private, link-local (the cloud
metadata service) and shared addresses are refused when the connection is made, unless
OBSERVATORY_WEBHOOK_ALLOW_PRIVATE is set; redirects are never followed. A real HTTP receiver on
loopback stands in for the webhook's server."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests

from analytics.webhooks import BlockedAddressError, is_blocked_address, post


class Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, bytes]] = []
    headers_received: list[dict[str, str]] = []
    status = 204

    def do_POST(self) -> None:
        Hook.received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
        Hook.headers_received.append(dict(self.headers))
        self.send_response(Hook.status)
        if Hook.status == 302:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[int]:
    Hook.received, Hook.headers_received, Hook.status = [], [], 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("192.168.0.10", True),
        ("172.16.5.4", True),
        ("169.254.169.254", True),  # the metadata service
        ("100.64.0.7", True),
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1%eth0", True),
        ("::ffff:127.0.0.1", True),
        ("fd00:ec2::254", True),
        ("93.184.215.14", False),
        ("2606:4700::1111", False),
    ],
)
def test_local_and_private_addresses_are_blocked(address: str, blocked: bool) -> None:
    assert is_blocked_address(address) is blocked


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_webhook_to_loopback_is_refused_before_anything_is_sent(hook: int, host: str) -> None:
    with pytest.raises(BlockedAddressError, match="local or private network"):
        post(f"http://{host}:{hook}/x", b"{}", {}, timeout=5, allow_private=False)

    assert Hook.received == []


def test_allowing_private_addresses_delivers_to_a_receiver_on_this_machine(hook: int) -> None:
    status = post(f"http://127.0.0.1:{hook}/x", b'{"a": 1}', {}, timeout=5, allow_private=True)

    assert status == 204
    assert Hook.received == [("/x", b'{"a": 1}')]


def test_a_redirect_is_answered_not_followed(hook: int) -> None:
    Hook.status = 302

    status = post(f"http://127.0.0.1:{hook}/x", b"{}", {}, timeout=5, allow_private=True)

    assert status == 302
    assert [path for path, _ in Hook.received] == ["/x"]


@pytest.mark.django_db
def test_the_requeue_webhook_posts_the_ids_and_refuses_private_addresses(
    hook: int, settings: Any
) -> None:
    from analytics.tasks import send_requeue_webhook_task
    from tests.builders import make_message, make_project, make_session

    project, _ = make_project(name="Hooked")
    project.requeue_webhook_url = f"http://127.0.0.1:{hook}/requeued"
    project.save()
    dead = make_message(make_session(project), message_id="m3", status="dead_lettered")

    settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(BlockedAddressError):
        send_requeue_webhook_task([dead.pk])
    settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = True
    sent = send_requeue_webhook_task([dead.pk])

    assert sent == 1
    ((path, body),) = Hook.received
    assert path == "/requeued"
    assert json.loads(body)["messages"][0]["message_id"] == "m3"


@pytest.mark.django_db
def test_the_requeue_webhook_is_signed_with_the_project_secret_over_timestamp_and_body(
    hook: int, settings: Any
) -> None:
    """What a receiver does (docs/ingest-api.md): HMAC-SHA256 of `<timestamp>.<body>` with the
    project's secret, compared in constant time; the timestamp is checked for freshness."""
    from analytics.tasks import send_requeue_webhook_task
    from tests.builders import make_message, make_project, make_session

    project, _ = make_project(name="Signed")
    other, _ = make_project(name="Other")
    project.requeue_webhook_url = f"http://127.0.0.1:{hook}/requeued"
    project.save()
    dead = make_message(make_session(project), message_id="m4", status="dead_lettered")
    settings.OBSERVATORY_WEBHOOK_ALLOW_PRIVATE = True

    send_requeue_webhook_task([dead.pk])

    ((_, body),) = Hook.received
    (headers,) = Hook.headers_received
    timestamp = headers["X-Observatory-Timestamp"]
    signed = timestamp.encode() + b"." + body
    secret = project.requeue_webhook_secret
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, headers["X-Observatory-Signature"])
    assert abs(time.time() - int(timestamp)) < 300
    assert len(secret) == 64 and secret != other.requeue_webhook_secret


@pytest.fixture
def trickler() -> Iterator[int]:
    """A receiver that answers one byte of its status line every 0.2 s, for ever: each read
    finishes well within a read timeout, so only a total deadline ends the call."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                while not stop.is_set():
                    try:
                        conn.sendall(b"H")
                    except OSError:
                        break
                    stop.wait(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    listener.close()


def test_a_receiver_that_trickles_its_answer_is_cut_off_at_the_total_deadline(
    trickler: int,
) -> None:
    with pytest.raises(requests.Timeout):
        post(
            f"http://127.0.0.1:{trickler}/x",
            b"{}",
            {},
            timeout=5,
            deadline=0.6,
            allow_private=True,
        )
