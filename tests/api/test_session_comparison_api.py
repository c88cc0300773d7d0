"""GET /api/v1/session-comparison/?a=&b=: the alignment as JSON, scoping and errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from ingest.models import ApiKey
from tests.builders import (
    make_compared_pair,
    make_message,
    make_project,
    make_session,
    make_user,
)

pytestmark = pytest.mark.django_db

COMPARISON = reverse("api:session-comparison")
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def client(key_client: Callable[[str], APIClient]) -> APIClient:
    project, raw_key = make_project(name="Acme")
    client = key_client(raw_key)
    client.project = project  # type: ignore[attr-defined]
    return client


def test_it_answers_the_aligned_steps_with_their_differences(client: APIClient) -> None:
    a, b = make_compared_pair(client.project, judge_prompt=SCRIPT)  # type: ignore[attr-defined]

    response = client.get(COMPARISON, {"a": a.external_id, "b": b.external_id})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["a"]["id"], body["b"]["id"]) == (a.external_id, b.external_id)
    assert body["url"].endswith(f"/sessions/compare/?a={a.pk}&b={b.pk}")
    steps = body["steps"]
    assert [s["operation"] for s in steps] == ["same", "inserted", "same", "changed", "same"]
    assert body["first_divergence"] == 1
    assert steps[1]["a"] is None
    assert steps[1]["b"]["error"] == "TimeoutError: search timed out after 30 s"
    assert steps[1]["is_divergent"] is True
    judge = steps[3]
    assert {d["field"]: (d["a"], d["b"], d["is_material"]) for d in judge["differences"]} == {
        "model": ("gpt-4o", "gpt-4o-mini", True),
        "output": ("attacker-injection breached", "No breach", True),
    }
    assert judge["a"]["prompt_preview"] == SCRIPT  # JSON carries the text as is
    assert body["counts"] == {"same": 3, "changed": 1, "inserted": 1, "deleted": 0}
    assert body["step_limit"] == 2000
    assert body["is_truncated_a"] is False and body["is_truncated_b"] is False
    totals = {row["label"]: row for row in body["totals"]}
    assert (totals["errors"]["a"], totals["errors"]["b"], totals["errors"]["change"]) == (0, 1, 1)
    assert totals["steps"]["change"] == 1
    assert body["messages"] == []


def test_a_member_compares_sessions_of_their_projects_and_names_the_project_when_ambiguous(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    first, _ = make_project(name="One", user=user)
    second, _ = make_project(name="Two", user=user)
    make_session(first, external_id="same-id")
    make_session(second, external_id="same-id")
    other = make_session(second, external_id="other")

    ambiguous = user_client(user).get(COMPARISON, {"a": "same-id", "b": "other"})
    named = user_client(user).get(COMPARISON, {"a": "same-id", "b": "other", "project": "two"})

    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "project"
    assert named.status_code == 200
    assert named.json()["b"]["id"] == other.external_id


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"b": "s-b"}, 400, "a"),
        ({"a": "s-a"}, 400, "b"),
        ({"a": "s-a", "b": "s\x00b"}, 400, "b"),
        ({"a": "nope", "b": "s-b"}, 404, "a"),
        ({"a": "s-a", "b": "elsewhere"}, 404, "b"),
    ],
)
def test_missing_bad_and_invisible_sessions_are_errors_naming_the_parameter(
    client: APIClient, params: dict[str, str], status: int, field: str
) -> None:
    make_session(client.project, external_id="s-a")  # type: ignore[attr-defined]
    make_session(client.project, external_id="s-b")  # type: ignore[attr-defined]
    make_session(make_project(name="Elsewhere")[0], external_id="elsewhere")

    response = client.get(COMPARISON, params)

    assert response.status_code == status, response.content
    assert response.json()["field"] == field
    assert response.json()["error"].startswith(f"{field}: ")


def test_a_key_needs_the_read_scope(key_client: Callable[[str], APIClient]) -> None:
    project, _ = make_project(name="Scoped")
    _, raw = ApiKey.generate(project, scopes=[ApiKey.Scope.INGEST])
    make_session(project, external_id="x")

    response = key_client(raw).get(COMPARISON, {"a": "x", "b": "x"})

    assert response.status_code == 403


def test_it_is_in_the_schema(client: APIClient) -> None:
    schema = client.get(reverse("api:schema"), {"format": "json"}).json()

    parameters = schema["paths"]["/api/v1/session-comparison/"]["get"]["parameters"]
    assert {p["name"] for p in parameters} >= {"a", "b", "project"}


def test_the_comparison_reads_the_same_number_of_queries_however_big_the_sessions(
    client: APIClient,
) -> None:
    project = client.project  # type: ignore[attr-defined]
    small = [make_session(project, spans=2) for _ in range(2)]
    big = [make_session(project, spans=40, agents=("a", "b", "c")) for _ in range(2)]
    for session in big:
        make_message(session, sender="agent-1", receivers=["agent-2"])

    client.get(COMPARISON, {"a": big[0].external_id, "b": big[1].external_id})  # key's last use
    counts = []
    for a, b in (small, big):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(COMPARISON, {"a": a.external_id, "b": b.external_id})
        assert response.status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
