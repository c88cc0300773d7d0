"""Projects, agents, metrics and ingest problems: each list returns its rows and filters them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.builders import T0, make_metric, make_project, make_rejection, make_session, make_user

pytestmark = pytest.mark.django_db


def results(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    rows: list[dict[str, Any]] = response.json()["results"]
    return rows


def test_projects_are_the_ones_the_user_is_a_member_of(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    make_project(name="Beta", user=user)
    make_project(name="Alpha", user=user, role="viewer")
    make_project(name="Strangers")

    rows = results(user_client(user).get(reverse("api:project-list")))

    assert [(row["slug"], row["name"]) for row in rows] == [("alpha", "Alpha"), ("beta", "Beta")]


def test_an_api_key_sees_only_its_own_project(key_client: Callable[[str], APIClient]) -> None:
    _, raw_key = make_project(name="Mine")
    make_project(name="Theirs")

    rows = results(key_client(raw_key).get(reverse("api:project-list")))

    assert [row["slug"] for row in rows] == ["mine"]


def test_agents_are_listed_with_their_session_and_filtered(
    key_client: Callable[[str], APIClient],
) -> None:
    project, raw_key = make_project()
    make_session(project, external_id="s1", agents=("planner", "critic"))
    make_session(project, external_id="s2", agents=("planner",), started_at=T0 + timedelta(1))
    url = reverse("api:agent-instance-list")
    client = key_client(raw_key)

    rows = results(client.get(url))

    assert (rows[0]["session_id"], rows[0]["name"]) == ("s2", "planner")
    assert len(rows) == 3
    assert rows[0]["agent_id"] == "agent-1"
    assert rows[0]["status"] == "active"
    assert len(results(client.get(url, {"name": "planner"}))) == 2
    assert len(results(client.get(url, {"session": "s1"}))) == 2
    assert results(client.get(url, {"status": "terminated"})) == []


def test_metrics_are_listed_newest_first_and_filtered(
    key_client: Callable[[str], APIClient],
) -> None:
    project, raw_key = make_project()
    session = make_session(project, external_id="s1")
    make_metric(
        project, session=session, name="memory_mb", value=512, at=T0, attributes={"host": "w1"}
    )
    make_metric(project, name="cpu", value=-3.5, at=T0 + timedelta(minutes=1), agent_id="a1")
    url = reverse("api:metric-list")
    client = key_client(raw_key)

    rows = results(client.get(url))

    assert [(row["name"], row["value"], row["session_id"]) for row in rows] == [
        ("cpu", -3.5, None),
        ("memory_mb", 512.0, "s1"),
    ]
    assert [row["attributes"] for row in rows] == [{}, {"host": "w1"}]
    assert [row["name"] for row in results(client.get(url, {"session": "s1"}))] == ["memory_mb"]
    assert [row["name"] for row in results(client.get(url, {"agent": "a1"}))] == ["cpu"]
    assert [
        row["name"] for row in results(client.get(url, {"before": "2026-11-21T10:01:00Z"}))
    ] == ["memory_mb"]


def test_ingest_problems_list_without_raw_text_and_detail_with_it(
    key_client: Callable[[str], APIClient],
) -> None:
    project, raw_key = make_project()
    rejection = make_rejection(project)
    client = key_client(raw_key)

    rows = results(client.get(reverse("api:ingest-problem-list")))
    detail = client.get(reverse("api:ingest-problem-detail", args=[rejection.pk]))

    assert [row["field"] for row in rows] == ["records[0].started_at"]
    assert "raw" not in rows[0]
    assert rows[0]["project"] == project.slug
    assert detail.json()["raw"] == rejection.raw
    assert results(client.get(reverse("api:ingest-problem-list"), {"is_resolved": "true"})) == []
