"""A session's transcript with a roles filter, and the status-lines list across sessions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from tests.builders import make_project, make_session

pytestmark = pytest.mark.django_db

CHAT = (
    ("system", "You are terse."),
    ("user", "Who won?"),
    ("agent", "Running tool SearchTool"),
    ("tool", "SearchTool returned 3 hits"),
    ("llm", "Calling gpt-4o"),
    ("log", "INFO fetched 3 pages"),
    ("assistant", "Team A won."),
)


def lines(response: Any) -> list[tuple[str, str]]:
    assert response.status_code == 200, response.content
    return [(row["role"], row["text"]) for row in response.json()["results"]]


@pytest.fixture
def client(key_client: Callable[[str], APIClient]) -> APIClient:
    project, raw_key = make_project(name="Acme")
    make_session(project, external_id="s1", transcript=CHAT)
    make_session(project, external_id="s2", transcript=(("agent", "other session"),))
    return key_client(raw_key)


def test_the_transcript_is_the_whole_chat_stream_in_order(client: APIClient) -> None:
    response = client.get(reverse("api:session-transcript", args=["s1"]))

    assert lines(response) == list(CHAT)
    assert response.json()["results"][0]["session_id"] == "s1"


def test_roles_user_and_assistant_leave_out_the_status_lines(client: APIClient) -> None:
    url = reverse("api:session-transcript", args=["s1"])

    response = client.get(url, {"roles": "user,assistant"})

    assert lines(response) == [("user", "Who won?"), ("assistant", "Team A won.")]


def test_an_unknown_role_is_a_400_naming_roles(client: APIClient) -> None:
    url = reverse("api:session-transcript", args=["s1"])

    response = client.get(url, {"roles": "user,robot"})

    assert response.status_code == 400
    assert response.json()["field"] == "roles"


def test_the_transcript_of_an_unknown_session_is_404(client: APIClient) -> None:
    response = client.get(reverse("api:session-transcript", args=["nope"]))

    assert response.status_code == 404


def test_roles_log_gives_the_captured_output_lines(client: APIClient) -> None:
    url = reverse("api:session-transcript", args=["s1"])

    response = client.get(url, {"roles": "log"})

    assert lines(response) == [("log", "INFO fetched 3 pages")]


def test_transcript_lines_carry_their_trace_id(key_client: Callable[[str], APIClient]) -> None:
    project, raw_key = make_project(name="Traced")
    make_session(project, external_id="t1", transcript=(("user", "hi", "ab" * 16),))

    response = key_client(raw_key).get(reverse("api:session-transcript", args=["t1"]))

    assert response.json()["results"][0]["trace_id"] == "ab" * 16


def test_status_lines_are_the_agent_llm_tool_and_log_lines_newest_first(
    client: APIClient,
) -> None:
    url = reverse("api:status-line-list")

    assert lines(client.get(url, {"session": "s1"})) == [
        ("log", "INFO fetched 3 pages"),
        ("llm", "Calling gpt-4o"),
        ("tool", "SearchTool returned 3 hits"),
        ("agent", "Running tool SearchTool"),
    ]
    assert len(lines(client.get(url))) == 5
    assert lines(client.get(url, {"roles": "tool"})) == [("tool", "SearchTool returned 3 hits")]
    assert lines(client.get(url, {"roles": "log,agent", "session": "s1"})) == [
        ("log", "INFO fetched 3 pages"),
        ("agent", "Running tool SearchTool"),
    ]


def test_status_lines_refuse_a_conversation_role(client: APIClient) -> None:
    response = client.get(reverse("api:status-line-list"), {"roles": "user"})

    assert response.status_code == 400
    assert response.json()["field"] == "roles"
