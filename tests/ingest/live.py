"""A live gunicorn on the test database, for tests whose behaviour depends on real concurrent
requests (sync workers, each request in its own process and transaction)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import BASE_DIR, database_url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_gunicorn(tmp_path: Path, **settings: str) -> Iterator[str]:
    """gunicorn with 4 sync workers on the test database, `settings` added to its environment.
    Its URL."""
    if connection.vendor != "postgresql":
        pytest.skip("gunicorn's workers cannot see the test's SQLite database; CI runs PostgreSQL")
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "test",
        "OBSERVATORY_DATA_DIR": str(tmp_path),
        **settings,
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi",
        "-w",
        "4",
        "-b",
        f"127.0.0.1:{port}",
    ]
    log = (tmp_path / "gunicorn.log").open("wb")
    process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def wait_until_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail("gunicorn did not answer within 60 s")


def send(url: str, key: str, data: bytes) -> int:
    """POST an OTLP protobuf body; the answer's status (an HTTP error raises)."""
    request = urllib.request.Request(
        f"{url}/v1/traces",
        data=data,
        headers={"Content-Type": "application/x-protobuf", "X-API-Key": key},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)
