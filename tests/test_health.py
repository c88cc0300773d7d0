"""GET /healthz, the load balancer's check (docs/deployment.md): 200 while the databases
answer, 503 naming the database that does not (a real outage: a closed port of this machine)."""

from __future__ import annotations

import pytest
from django.conf import settings
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


def test_a_primary_that_does_not_answer_is_a_503_naming_it(database_down: None) -> None:
    answer = Client().get("/healthz")

    assert answer.status_code == 503
    assert answer.json()["databases"]["default"] == "down"
    assert answer.json()["error"] == "database default does not answer"
