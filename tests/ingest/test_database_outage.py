"""While the database cannot be reached every endpoint answers 503 with Retry-After (which the
agentops SDK, OTLP exporters and our SDK retry), never a 500 (which they drop).

The outage is real: the connection is pointed at a closed port of this machine for the request.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from tests.builders import make_project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v2/create_session", {"session": {"session_id": "0f3c", "tags": []}}),
        ("/v3/auth/token", {"api_key": "00000000-0000-0000-0000-000000000000"}),
        ("/api/v1/sessions/", None),
    ],
)
def test_an_unreachable_database_is_a_503_with_retry_after(
    path: str, body: Any, database_down: None
) -> None:
    key = "00000000-0000-0000-0000-000000000000"
    client = Client(raise_request_exception=False)
    headers = {"Authorization": f"Bearer {key}", "X-Agentops-Api-Key": key}
    if body is None:
        response = client.get(path, headers=headers)
    else:
        response = client.post(
            path, json.dumps(body), content_type="application/json", headers=headers
        )

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "nothing was stored" in response.json()["error"]


def test_the_same_request_succeeds_once_the_database_is_back() -> None:
    _, key = make_project(name="Back")
    response = Client().get("/api/v1/sessions/", headers={"Authorization": f"Bearer {key}"})

    assert response.status_code == 200
