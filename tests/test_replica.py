"""The read replica (config/replica.py): pages and the read API read from it, ingest and every
write use the primary, and a client that has just changed something reads the primary.

The suite runs with DATABASE_REPLICA_URL set (scripts/test.sh), the replica a TEST MIRROR of the
primary: its own connection to the same database, so these tests see which connection each
query went to. The tests commit (`transactional_db`): a replica cannot see an open transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from config.replica import PIN_COOKIE
from ingest.models import Membership
from tests.builders import make_project, make_session

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        "replica" not in settings.DATABASES,
        reason="no DATABASE_REPLICA_URL: run the suite with `bash scripts/test.sh`",
    ),
]

WRITES = ("INSERT", "UPDATE", "DELETE")


@contextmanager
def queries_by_alias() -> Iterator[dict[str, list[str]]]:
    """The SQL each connection ran inside the block, by alias."""
    sql: dict[str, list[str]] = {}
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections["replica"]) as replica,
    ):
        yield sql
    sql["default"] = [q["sql"] for q in primary.captured_queries]
    sql["replica"] = [q["sql"] for q in replica.captured_queries]


def reads_of(table: str, statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and f'"{table}"' in s]


@pytest.fixture
def member(admin_user: Any) -> tuple[Client, Any]:
    project, _ = make_project(name="Replicated")
    Membership.objects.create(user=admin_user, project=project, role=Membership.Role.ADMIN)
    client = Client()
    client.force_login(admin_user)
    return client, project


def test_the_sessions_page_reads_its_sessions_from_the_replica(member: tuple[Client, Any]) -> None:
    client, project = member
    make_session(project, name="visible on the replica")

    with queries_by_alias() as sql:
        page = client.get("/sessions/", {"project": project.slug})

    assert "visible on the replica" in page.content.decode()
    assert reads_of("ingest_session", sql["replica"])
    assert not reads_of("ingest_session", sql["default"])
    assert not reads_of("django_session", sql["replica"]), "logins stay on the primary"


def test_the_read_api_reads_from_the_replica_and_writes_only_to_the_primary() -> None:
    project, key = make_project(name="Api")
    make_session(project, external_id="s-api")

    with queries_by_alias() as sql:
        answer = Client().get("/api/v1/sessions/", headers={"X-API-Key": key})

    assert answer.status_code == 200
    assert [row["id"] for row in answer.json()["results"]] == ["s-api"]
    assert reads_of("ingest_session", sql["replica"])
    assert not [s for s in sql["replica"] if s.startswith(WRITES)]
    assert [s for s in sql["default"] if s.startswith("UPDATE")], "the key's last use is noted"


def test_ingest_never_touches_the_replica() -> None:
    _, key = make_project(name="Ingest")
    start = {"type": "session.start", "id": "r1", "session_id": "s-ingest"}

    with queries_by_alias() as sql:
        answer = Client().post(
            "/api/v1/ingest",
            json.dumps({"records": [start | {"started_at": "2026-12-01T10:00:00Z"}]}),
            content_type="application/json",
            headers={"Authorization": f"Bearer {key}"},
        )

    assert answer.status_code == 200, answer.content
    assert sql["replica"] == []
    assert [s for s in sql["default"] if s.startswith("INSERT")]
    assert PIN_COOKIE not in answer.cookies  # ingest clients are not pinned


def test_after_deleting_a_session_the_list_it_redirects_to_reads_the_primary(
    member: tuple[Client, Any],
) -> None:
    """A lagging replica would still list the deleted session on the page the form redirects
    to; the pin cookie sends that client's reads to the primary for a few seconds."""
    client, project = member
    doomed = make_session(project, name="doomed")

    deleted = client.post(f"/sessions/{doomed.pk}/delete/")
    assert deleted.status_code == 302
    assert deleted.cookies[PIN_COOKIE]["max-age"] == settings.OBSERVATORY_REPLICA_PIN_SECONDS
    with queries_by_alias() as sql:
        page = client.get(deleted["Location"])

    assert f"/sessions/{doomed.pk}/" not in page.content.decode()
    assert sql["replica"] == []
    assert reads_of("ingest_session", sql["default"])
