"""Authentication and project isolation: nothing of project B reaches a key or user of project A."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from ingest.models import ApiKey, Span
from tests.builders import make_metric, make_project, make_rejection, make_session, make_user
from tests.responses import streamed

pytestmark = pytest.mark.django_db

LISTS = [
    "api:project-list",
    "api:session-list",
    "api:event-list",
    "api:agent-list",
    "api:agent-instance-list",
    "api:status-line-list",
    "api:metric-list",
    "api:ingest-problem-list",
]


@pytest.fixture
def project_b() -> Any:
    """Project B, with one of everything; the tests look at it from elsewhere."""
    project, raw_key = make_project(name="Project B")
    session = make_session(project, external_id="b-session", transcript=(("agent", "b status"),))
    make_metric(project, session=session)
    make_rejection(project)
    # /api/v1/agents/ covers the last 7 days by default.
    make_session(project, external_id="b-recent", started_at=timezone.now())
    # The fixture hands the tests the key on the project; a model has no such field.
    project.raw_key = raw_key  # type: ignore[attr-defined]
    return project


@pytest.mark.parametrize("name", LISTS)
def test_a_key_of_project_a_lists_nothing_of_project_b(
    key_client: Callable[[str], APIClient], project_b: Any, name: str
) -> None:
    _, key_a = make_project(name="Project A")
    client = key_client(key_a)

    response = client.get(reverse(name))
    export = client.get(reverse(name), {"format": "csv"})
    seen_by_b = key_client(project_b.raw_key).get(reverse(name)).json()["results"]

    assert seen_by_b, "project B has a row here, so an empty answer for A means something"
    rows = response.json()["results"]
    csv_lines = streamed(export).decode().splitlines()
    if name == "api:project-list":
        assert [row["slug"] for row in rows] == ["project-a"]
        assert len(csv_lines) == 2 and csv_lines[1].startswith("project-a,")
    else:
        assert rows == []
        assert len(csv_lines) == 1  # the header only


def test_a_key_of_project_a_gets_404_for_project_bs_session_events_and_transcript(
    key_client: Callable[[str], APIClient], project_b: Any
) -> None:
    _, key_a = make_project(name="Project A")
    client = key_client(key_a)
    span = Span.objects.filter(project=project_b).first()
    assert span is not None

    for url in [
        reverse("api:session-detail", args=["b-session"]),
        reverse("api:session-event-list", args=["b-session"]),
        reverse("api:session-transcript", args=["b-session"]),
        reverse("api:session-transcript", args=["b-session"]) + "?format=csv",
        reverse("api:session-detail", args=["b-session"]) + "?project=project-b",
        reverse("api:event-detail", args=[span.pk]),
    ]:
        response = client.get(url)
        assert response.status_code == 404, url
        assert response["Content-Type"] == "application/json", url


def test_the_project_filter_cannot_widen_a_keys_scope(
    key_client: Callable[[str], APIClient], project_b: Any
) -> None:
    _, key_a = make_project(name="Project A")

    response = key_client(key_a).get(reverse("api:session-list"), {"project": "project-b"})

    assert response.json()["results"] == []


def test_a_logged_in_user_sees_only_member_projects_even_as_superuser(
    user_client: Callable[[Any], APIClient], project_b: Any
) -> None:
    user = make_user(is_superuser=True, is_staff=True)
    project_a, _ = make_project(name="Project A", user=user, role="viewer")
    make_session(project_a, external_id="a-session")
    client = user_client(user)

    sessions = client.get(reverse("api:session-list")).json()["results"]
    detail = client.get(reverse("api:session-detail", args=["b-session"]))

    assert [row["id"] for row in sessions] == ["a-session"]
    assert detail.status_code == 404


def test_the_project_filter_narrows_a_users_projects(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    for name in ("One", "Two"):
        project, _ = make_project(name=name, user=user)
        make_session(project, external_id=f"in-{project.slug}")
    client = user_client(user)

    both = client.get(reverse("api:session-list")).json()["results"]
    one = client.get(reverse("api:session-list"), {"project": "one"}).json()["results"]

    assert len(both) == 2
    assert [row["id"] for row in one] == ["in-one"]


@pytest.mark.parametrize("name", [*LISTS, "api:session-detail"])
def test_no_credentials_is_401_with_a_www_authenticate_header(name: str) -> None:
    url = reverse(name, args=["x"]) if name.endswith("detail") else reverse(name)

    response = APIClient().get(url)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json()["field"] == "Authorization"


def test_an_unknown_or_revoked_key_is_401(key_client: Callable[[str], APIClient]) -> None:
    project, raw_key = make_project()
    unknown = key_client("obs_not-a-key").get(reverse("api:session-list"))
    ApiKey.objects.filter(project=project).update(revoked_at="2026-11-21T10:00:00Z")
    revoked = key_client(raw_key).get(reverse("api:session-list"), {"format": "csv"})

    assert unknown.status_code == 401
    assert unknown.json() == {"error": "Unknown or revoked API key", "field": "Authorization"}
    assert revoked.status_code == 401
    assert revoked["Content-Type"] == "application/json"


def test_the_x_api_key_header_works_too() -> None:
    _, raw_key = make_project()

    response = APIClient().get(reverse("api:session-list"), HTTP_X_API_KEY=raw_key)

    assert response.status_code == 200
