"""GET /healthz, the load balancer's check (docs/deployment.md): 200 while the databases
answer, 503 naming the database that does not (a real outage: a closed port of this machine)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.db import connections
from django.test import Client

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_healthy_server_answers_ok_for_every_database_and_the_broker() -> None:
    answer = Client().get("/healthz")

    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "databases": dict.fromkeys(settings.DATABASES, "ok"),
        "broker": "ok",
    }


@pytest.fixture
def primary_down() -> Iterator[None]:
    connection = connections["default"]
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


def test_a_primary_that_does_not_answer_is_a_503_naming_it(primary_down: None) -> None:
    answer = Client().get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["databases"]["default"] == "down"
    assert answer.json()["error"] == "database default does not answer"
