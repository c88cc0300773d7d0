"""A stand-in ingest server for SDK tests: a stdlib HTTP server on 127.0.0.1 with scripted answers.

It stands in for an overloaded or misbehaving network peer (503s, 429s, 400s), which the real
endpoint cannot be made to produce on demand.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from observatory_sdk import Client


@dataclass(frozen=True)
class Answer:
    """One scripted reply; a 200 with no body answers every record as accepted."""

    status: int
    body: dict[str, Any] | None = None


@dataclass
class Request:
    headers: dict[str, str]
    records: list[dict[str, Any]]


@dataclass
class FakeIngest:
    """The server's script of answers (used in order, then 200s) and the requests it received."""

    url: str = ""
    script: list[Answer] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, records: list[dict[str, Any]], headers: dict[str, str]) -> Answer:
        with self.lock:
            self.requests.append(Request(headers=headers, records=records))
            if self.script:
                return self.script.pop(0)
        return Answer(200, accepted_body(records))

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record received, in order, counting retried batches once per attempt."""
        with self.lock:
            return [record for request in self.requests for record in request.records]


def accepted_body(records: list[dict[str, Any]]) -> dict[str, Any]:
    results = [
        {"index": index, "id": record.get("id"), "status": "accepted"}
        for index, record in enumerate(records)
    ]
    return {"accepted": len(records), "duplicates": 0, "rejected": 0, "results": results}


def _handler_class(fake: FakeIngest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            records = json.loads(body)["records"]
            answer = fake.answer(records, dict(self.headers.items()))
            payload = json.dumps(answer.body if answer.body is not None else {}).encode()
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # Keep the test output for the tests.

    return Handler


@pytest.fixture
def fake_ingest() -> Iterator[FakeIngest]:
    fake = FakeIngest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(fake))
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(fake_ingest: FakeIngest) -> Iterator[Client]:
    """A client that sends only when flushed (or closed), with near-instant retries."""
    sdk_client = Client(
        "obs_test",
        fake_ingest.url,
        batch_size=10_000,
        flush_interval=3600,
        backoff_base=0.01,
        backoff_max=0.05,
        max_retries=3,
    )
    yield sdk_client
    sdk_client.close(timeout=10)
