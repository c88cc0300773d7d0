"""Fixtures shared by the whole suite: Chromium for Playwright, a real Celery worker, a project
with an API key and a logged-in browser page."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.waiting import DEADLINE, DEADLINE_MS, landings_settled, wait_until

# With a read replica configured (scripts/test.sh sets one, a TEST MIRROR of the primary),
# every test may use it: pages read from it through config.replica's router. Inside a test's
# transaction the router reads the primary, which is where that test's rows are.
HAS_REPLICA = bool(os.environ.get("DATABASE_REPLICA_URL"))
if HAS_REPLICA:
    from django.test import TransactionTestCase

    TransactionTestCase.databases = {"default", "replica"}


@pytest.fixture(autouse=True)
def _forget_cached_api_keys() -> Iterator[None]:
    """Each test's database starts empty, but raw keys written into tests recur: a key cached
    by an earlier test must not authenticate in this one."""
    from ingest.auth import forget_cached_keys

    forget_cached_keys()
    yield


@pytest.fixture(autouse=True)
def _close_replica_connection() -> Iterator[None]:
    """Close the replica connection a test's requests opened (it persists like any connection
    with CONN_MAX_AGE): left open, it keeps the test database from being dropped at the end."""
    yield
    if HAS_REPLICA:
        from django.db import connections

        connections["replica"].close()


@pytest.fixture(autouse=True)
def _live_server_landings_done(request: pytest.FixtureRequest) -> Iterator[None]:
    """The live server lands a small request just after its answer (ingest/landing.py), so the
    last request of a test (an exporter's final export at shutdown) may still be landing when
    the test ends. Its transaction and the TRUNCATE that empties the tables after the test can
    then deadlock, and every later test meets the last one's rows. So a test that used the live
    server ends only once nothing is pending and no landing holds its lock."""
    if "live_server" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("transactional_db")  # set up before, so emptied after, this wait
    yield
    wait_until(landings_settled, what="the live server to land its pending requests")


# Playwright's sync API runs an event loop in the test thread, so Django's ORM would refuse
# every query made while the `page` fixture is active (SynchronousOnlyOperation).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

BASE_DIR = Path(__file__).resolve().parent.parent
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """Debian's chromium instead of a downloaded browser (`playwright install` is never run)."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM_PATH, "args": CHROMIUM_ARGS}


@pytest.fixture
def context(context: Any) -> Any:
    """Playwright waits (page loads, locators) up to the suite's deadline, not its 30 s default."""
    from playwright.sync_api import expect

    context.set_default_timeout(DEADLINE_MS)
    expect.set_options(timeout=DEADLINE_MS)
    return context


@dataclass
class CeleryWorker:
    """A running `celery worker` subprocess and its log file."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self, *, start: int = 0) -> str:
        return self.log_path.read_text(errors="replace")[start:]

    def log_size(self) -> int:
        return len(self.log())

    def wait_for_log(self, text: str, *, start: int = 0, timeout: float = DEADLINE) -> str:
        """Wait until `text` appears in the log after character `start`; return the log from there."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log(start=start)
            if text in log:
                return log
            if self.process.poll() is not None:
                pytest.fail(f"Celery worker exited with {self.process.returncode}:\n{log}")
            time.sleep(0.1)
        pytest.fail(f"{text!r} not in the Celery worker log after {timeout:.0f} s:\n{self.log()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: warm shutdown, the current task finishes.
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# Set on a test that uses `celery_worker`: the worker and where its log stood when the test began.
WORKER_LOG_KEY = pytest.StashKey[tuple[CeleryWorker, int]]()


def start_celery_worker(env: dict[str, str], log_path: Path, *args: str) -> CeleryWorker:
    """Start `celery -A config worker` with `env` and wait until it logs that it is ready."""
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "-l",
        "info",
        "--concurrency",
        "1",
        "--pool",
        "solo",
        "--hostname",
        f"test-{uuid.uuid4().hex[:8]}@%h",
        *args,
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command, cwd=BASE_DIR, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
    worker = CeleryWorker(process=process, log_path=log_path)
    try:
        worker.wait_for_log(" ready.")
    except BaseException:
        worker.stop()
        raise
    return worker


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the PostgreSQL database described by a Django settings dict."""
    user = quote(settings_dict["USER"] or "", safe="")
    password = quote(settings_dict["PASSWORD"] or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = quote(settings_dict["HOST"] or "localhost", safe="")  # a socket path is a host too
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    return f"postgres://{credentials}{host}{port}/{quote(settings_dict['NAME'], safe='')}"


def celery_worker_env() -> dict[str, str]:
    """The environment of a worker process on the suite's Redis and test database; skips the
    test when the suite runs without them."""
    from django.conf import settings
    from django.db import connection

    broker_url = settings.CELERY_BROKER_URL
    if not broker_url.startswith(("redis://", "rediss://")):
        pytest.skip(
            f"the celery_worker fixture needs a Redis CELERY_BROKER_URL, got {broker_url!r}; "
            "run the suite with `bash scripts/test.sh`, which starts one"
        )
    if connection.vendor != "postgresql":
        pytest.skip(
            "the celery_worker fixture needs PostgreSQL: a worker process cannot see the "
            f"{connection.vendor} test database; run the suite with `bash scripts/test.sh`"
        )
    return {
        **os.environ,
        "CELERY_BROKER_URL": broker_url,
        # pytest-django has created test_<name> by now: the worker must use it, not the real one.
        "DATABASE_URL": database_url(connection.settings_dict),
        **(
            {"DATABASE_REPLICA_URL": database_url(connection.settings_dict)}
            if os.environ.get("DATABASE_REPLICA_URL")
            else {}
        ),
        # The webhook receivers of the worker tests listen on loopback.
        "OBSERVATORY_WEBHOOK_ALLOW_PRIVATE": "true",
    }


@pytest.fixture(scope="module")
def _celery_worker_process(django_db_setup: None) -> Iterator[CeleryWorker]:
    """One worker per test module, on every queue: starting one costs a few seconds."""
    env = celery_worker_env()
    with tempfile.TemporaryDirectory(prefix="celery-worker-") as tmp:
        # --purge: tasks left in the queue by earlier tests refer to rows that are gone.
        worker = start_celery_worker(env, Path(tmp) / "worker.log", "--purge")
        try:
            yield worker
        finally:
            worker.stop()


@pytest.fixture
def celery_worker(
    request: pytest.FixtureRequest, _celery_worker_process: CeleryWorker, transactional_db: None
) -> Iterator[CeleryWorker]:
    """A real Celery worker (`--pool solo`) on the Redis broker and the test database.

    The worker is another process with its own database connection, so it sees only committed
    rows. pytest-django's plain `db` fixture wraps each test in a transaction that is rolled back
    and never committed, so this fixture pulls in `transactional_db` (`live_server` does the
    same): what the test writes is committed, and the tables are emptied after the test.

    On failure, the worker's log for the test is added to the pytest report.
    """
    worker = _celery_worker_process
    request.node.stash[WORKER_LOG_KEY] = (worker, worker.log_size())
    yield worker
    if worker.process.poll() is not None:
        pytest.fail(f"Celery worker died during the test:\n{worker.log()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed and WORKER_LOG_KEY in item.stash:
        worker, start = item.stash[WORKER_LOG_KEY]
        report.sections.append(("Celery worker log", worker.log(start=start)))
    return report


@pytest.fixture
def project_with_key(db: None, admin_user: Any) -> tuple[Any, str]:
    """A project with an API key, with pytest-django's `admin_user` as an admin member."""
    from ingest.models import ApiKey, Membership, Project

    project = Project.objects.create(name="Test project", slug="test-project")
    Membership.objects.create(user=admin_user, project=project, role=Membership.Role.ADMIN)
    _, raw_key = ApiKey.generate(project)
    return project, raw_key


@pytest.fixture
def logged_in_page(page: Any, live_server: Any, admin_user: Any) -> Any:
    """A Playwright page logged into `live_server` as `admin_user` through the login form."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", admin_user.username)
    page.fill("#id_password", "password")  # pytest-django's admin_user password
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    if "/accounts/login/" in page.url:
        pytest.fail(
            f"logging in as {admin_user.username} failed; the page says:\n{page.inner_text('body')}"
        )
    return page


@pytest.fixture
def database_down() -> Iterator[None]:
    """The default database stops answering (its connection points at a closed port) until the
    test ends: what a PostgreSQL restart looks like to a request."""
    import socket

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the outage is simulated on PostgreSQL (bash scripts/test.sh runs one)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
