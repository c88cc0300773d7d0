"""What a user notices about the plumbing: strict settings, SQLite in WAL mode, a Celery worker
that runs tasks with no broker server, and the test fixtures that other tests rely on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.settings import env_bool
from tests.conftest import BASE_DIR, CeleryWorker, start_celery_worker
from tests.waiting import DEADLINE


def clean_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh shell: no DATABASE_URL, no broker, nothing from the test run."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "OBSERVATORY_DATA_DIR": str(data_dir),
    }
    return {**env, **extra}


def run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def test_it_refuses_to_start_without_secret_key_when_debug_is_false(tmp_path: Path) -> None:
    result = run_python("import django; django.setup()", clean_env(tmp_path, DEBUG="false"))

    assert result.returncode != 0
    assert "SECRET_KEY is required when DEBUG is false" in result.stderr


def test_it_reads_secret_key_from_a_file_named_by_secret_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-docker-secret\n")
    env = clean_env(tmp_path, SECRET_KEY_FILE=str(key_file))

    result = run_python(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.SECRET_KEY)",
        env,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "from-a-docker-secret"


@pytest.mark.parametrize("value", ["yes", "on", "True!"])
def test_env_bool_rejects_anything_but_true_false_1_0(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OBSERVATORY_TEST_FLAG", value)

    with pytest.raises(ImproperlyConfigured, match="OBSERVATORY_TEST_FLAG must be one of"):
        env_bool("OBSERVATORY_TEST_FLAG")


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("FALSE", False)])
def test_env_bool_accepts_true_false_1_0(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv("OBSERVATORY_TEST_FLAG", value)

    assert env_bool("OBSERVATORY_TEST_FLAG") is expected


def test_the_default_sqlite_database_lives_in_the_data_dir_in_wal_mode(tmp_path: Path) -> None:
    result = run_python(
        "import django; django.setup(); from django.db import connection\n"
        "with connection.cursor() as cursor:\n"
        "    cursor.execute('PRAGMA journal_mode')\n"
        "    print(cursor.fetchone()[0])",
        clean_env(tmp_path, SECRET_KEY="test"),
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "wal"
    assert (tmp_path / "db.sqlite3").exists()


def test_a_worker_runs_a_task_with_no_broker_server_configured(tmp_path: Path) -> None:
    """No CELERY_BROKER_URL: the task travels through kombu's filesystem transport in the
    data directory, from a producer process to a real worker process."""
    env = clean_env(tmp_path, SECRET_KEY="test")
    worker = start_celery_worker(env, tmp_path / "worker.log")
    try:
        sent = run_python(
            "from config.celery import app\nprint(app.send_task('analytics.tasks.ping').id)",
            env,
        )
        assert sent.returncode == 0, sent.stderr

        log = worker.wait_for_log(f"[{sent.stdout.strip()}] succeeded")
    finally:
        worker.stop()

    assert "'pong'" in log
    assert "config.broker:Transport" in worker.log()  # the embedded, atomic filesystem broker
    assert (tmp_path / "celery" / "queue").is_dir()


@pytest.mark.worker
def test_the_celery_worker_fixture_runs_tasks_sent_through_redis(
    celery_worker: CeleryWorker,
) -> None:
    from config.celery import app

    start = celery_worker.log_size()
    task_id = app.send_task("analytics.tasks.ping").id

    log = celery_worker.wait_for_log(f"[{task_id}] succeeded", start=start)
    assert "'pong'" in log


@pytest.mark.e2e
def test_playwright_drives_debian_chromium_against_the_live_server(
    page: Any, live_server: Any
) -> None:
    page.goto(f"{live_server.url}/admin/login/")

    assert "Log in" in page.title()
    assert page.locator("#id_username").is_visible()


def test_the_default_hosts_are_loopback_and_https_mode_sets_secure_cookies_and_hsts(
    tmp_path: Path,
) -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.ALLOWED_HOSTS, getattr(s, 'SESSION_COOKIE_SECURE', False), "
        "getattr(s, 'SECURE_HSTS_SECONDS', 0))"
    )
    plain = run_python(code, clean_env(tmp_path, SECRET_KEY="k"))
    https = run_python(code, clean_env(tmp_path, SECRET_KEY="k", OBSERVATORY_HTTPS="true"))

    assert plain.stdout.split() == ["['localhost',", "'127.0.0.1',", "'[::1]']", "False", "0"]
    assert https.stdout.split()[-2:] == ["True", "31536000"]


def test_the_embedded_broker_never_hands_out_a_half_written_message(tmp_path: Path) -> None:
    """A producer thread and a consumer polling the same folder, as beat and the worker do in one
    `-B` process: every message arrives whole and once (kombu's own transport let the reader take
    a file before it was written: a lost task and a worker stopped by JSONDecodeError)."""
    import threading

    from kombu import Connection

    folders = {name: tmp_path / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir()
    options = {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
    }
    count = 200
    # Big messages keep each write open long enough for the reader to find the file mid-write.
    padding = "x" * 1_000_000
    with (
        Connection(
            "filesystem://", transport="config.broker:Transport", transport_options=options
        ) as producer_conn,
        Connection(
            "filesystem://", transport="config.broker:Transport", transport_options=options
        ) as consumer_conn,
    ):
        outbox = producer_conn.SimpleQueue("race")
        inbox = consumer_conn.SimpleQueue("race")

        def write() -> None:
            for n in range(count):
                outbox.put({"n": n, "pad": padding})

        writer = threading.Thread(target=write)
        writer.start()
        received: list[int] = []
        while len(received) < count:
            try:
                message = inbox.get(timeout=DEADLINE)
            except inbox.Empty:
                break
            received.append(message.payload["n"])
            message.ack()
        writer.join()

    assert sorted(received) == list(range(count))
