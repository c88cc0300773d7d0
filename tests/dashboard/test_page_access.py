"""Who may see the dashboard pages: login, logout, the project switcher, another project's objects."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from tests.builders import make_project, make_session, make_user
from tests.dashboard.conftest import (
    SESSIONS,
    detail_url,
    make_rejection,
    names,
    span_url,
    stream_url,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "name",
    [
        "overview",
        "session-list",
        "session-detail",
        "session-stream",
        "span-detail",
        "ingest-problems",
    ],
)
def test_every_page_sends_an_anonymous_visitor_to_the_login_page(
    client: Client, project: Any, name: str
) -> None:
    session = make_session(project)
    span = session.spans.earliest("pk")
    args = {"session-detail": [session.pk], "session-stream": [session.pk]}.get(name, [])
    url = span_url(span) if name == "span-detail" else reverse(f"dashboard:{name}", args=args)

    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


def test_the_login_page_renders_a_form_that_logs_in(client: Client, user: Any) -> None:
    page = client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "alice", "password": "password"})

    assert b'id="id_username"' in page.content and b'id="id_password"' in page.content
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_logout_button_posts_a_form(logged_in: Client) -> None:
    response = logged_in.get("/")

    assert b'action="/accounts/logout/"' in response.content
    assert logged_in.post("/accounts/logout/").status_code == 302
    assert logged_in.get("/").status_code == 302


def test_a_user_without_a_project_is_told_how_to_get_one(client: Client) -> None:
    client.force_login(make_user(username="lonely"))

    response = client.get(SESSIONS)

    assert response.status_code == 200
    assert b"No project yet" in response.content


def test_the_project_switcher_changes_the_project_and_remembers_it(
    logged_in: Client, user: Any, project: Any
) -> None:
    other, _ = make_project(name="Beta", user=user)
    make_project(name="Not mine")
    make_session(project, name="acme session")
    make_session(other, name="beta session")

    assert names(logged_in.get(SESSIONS)) == ["acme session"]
    assert names(logged_in.get(SESSIONS, {"project": "beta"})) == ["beta session"]
    assert names(logged_in.get(SESSIONS)) == ["beta session"]
    assert logged_in.get(SESSIONS, {"project": "not-mine"}).status_code == 404


def test_a_member_of_one_project_gets_404_for_another_projects_objects(logged_in: Client) -> None:
    theirs, _ = make_project(name="Theirs")
    session = make_session(theirs)
    rejection = make_rejection(theirs, raw="{}")

    assert logged_in.get(detail_url(session)).status_code == 404
    assert logged_in.get(stream_url(session)).status_code == 404
    assert logged_in.get(span_url(session.spans.earliest("pk"))).status_code == 404
    replay = reverse("dashboard:rejection-replay", args=[rejection.pk])
    assert logged_in.post(replay, {"raw": "{}"}).status_code == 404


def test_a_span_is_only_found_under_its_own_session(logged_in: Client, project: Any) -> None:
    one, two = make_session(project), make_session(project)
    url = reverse("dashboard:span-detail", args=[one.pk, two.spans.earliest("pk").pk])

    assert logged_in.get(url).status_code == 404
