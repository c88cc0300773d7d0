"""GET /api/v1/sessions/ and /api/v1/sessions/<id>/: rows, filters, ordering, errors, queries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.http import QueryDict
from django.urls import reverse
from rest_framework.test import APIClient

from api.filters import SessionFilter
from ingest.models import Session, TraceLink
from tests.builders import T0, make_project, make_session, make_user

pytestmark = pytest.mark.django_db

SESSIONS = reverse("api:session-list")


def ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def client(key_client: Callable[[str], APIClient]) -> APIClient:
    project, raw_key = make_project(name="Acme")
    client = key_client(raw_key)
    client.project = project  # type: ignore[attr-defined]
    return client


def test_it_lists_sessions_newest_first_with_their_summary(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="old", started_at=T0)
    session = make_session(
        project,
        external_id="new",
        name="arena round",
        started_at=T0 + timedelta(hours=1),
        spans=4,
        failed=1,
        llm_spans=2,
        tags=["demo"],
        agents=("planner", "critic"),
        user_query="Who won?",
        group_key="g1",
        parent="old",
        metadata={"k": "v"},
    )

    response = client.get(SESSIONS)

    assert ids(response) == ["new", "old"]
    assert response.json()["results"][0] == {
        "id": "new",
        "project": "acme",
        "name": "arena round",
        "started_at": "2026-11-21T11:00:00Z",
        "ended_at": "2026-11-21T11:00:05Z",
        "duration_ms": 5000.0,
        "end_state": "success",
        "end_state_reason": "",
        "tags": ["demo"],
        "metadata": {"k": "v"},
        "config": {},
        "user_query": "Who won?",
        "parent_session_id": "old",
        "group_key": "g1",
        "is_inferred": False,
        "event_count": 4,
        "llm_count": 2,
        "tool_count": 1,
        "error_count": 1,
        "prompt_tokens": 200,
        "completion_tokens": 40,
        "cost": 0.002,
        "has_errors": True,
        "agent_names": ["critic", "planner"],
        "models_used": ["gpt-4o"],
        "scores": "",
        "url": f"http://testserver/sessions/{session.pk}/",
    }


def test_detail_is_found_by_the_clients_session_id(client: APIClient) -> None:
    make_session(client.project, external_id="run/42")  # type: ignore[attr-defined]

    response = client.get(reverse("api:session-detail", args=["run/42"]))

    assert response.status_code == 200
    assert response.json()["id"] == "run/42"


def test_detail_lists_the_rounds_of_a_multi_trace_session_in_order(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    first, second = "ab" * 16, "cd" * 16
    make_session(project, external_id="chat", spans=3, trace_ids=(second, first))
    TraceLink.objects.filter(trace_id=first).update(round_index=None)

    detail = client.get(reverse("api:session-detail", args=["chat"])).json()
    listed = client.get(SESSIONS).json()["results"][0]

    assert detail["rounds"] == [
        {
            "trace_id": second,
            "round_index": 0,
            "started_at": "2026-11-21T10:00:00Z",
            "span_count": 2,
        },
        {
            "trace_id": first,
            "round_index": None,
            "started_at": "2026-11-21T10:00:02Z",
            "span_count": 1,
        },
    ]
    assert "rounds" not in listed


def test_a_single_trace_session_has_no_rounds(client: APIClient) -> None:
    make_session(client.project, external_id="one")  # type: ignore[attr-defined]

    assert client.get(reverse("api:session-detail", args=["one"])).json()["rounds"] == []


def test_detail_costs_the_same_queries_for_two_rounds_or_ten(
    client: APIClient, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project = client.project  # type: ignore[attr-defined]
    client.get(SESSIONS)  # the key's first use reads it and writes last_used_at; later ones do not
    for count in (2, 10):
        traces = [f"{count:02d}{i:030x}" for i in range(count)]
        make_session(project, external_id=f"rounds-{count}", spans=count, trace_ids=traces)
        url = reverse("api:session-detail", args=[f"rounds-{count}"])
        # The session, its trace links, the rounds' span counts, its scores.
        with django_assert_num_queries(4):
            assert len(client.get(url).json()["rounds"]) == count


def test_detail_of_an_unknown_session_is_404_in_the_error_shape(client: APIClient) -> None:
    response = client.get(reverse("api:session-detail", args=["nope"]))

    assert response.status_code == 404
    assert response.json() == {"error": "No session 'nope' in your projects", "field": ""}


def test_a_session_id_in_two_of_the_users_projects_needs_the_project(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    first, _ = make_project(name="First", user=user)
    second, _ = make_project(name="Second", user=user)
    make_session(first, external_id="same", name="in first")
    make_session(second, external_id="same", name="in second")
    client = user_client(user)
    url = reverse("api:session-detail", args=["same"])

    ambiguous = client.get(url)
    narrowed = client.get(url, {"project": "second"})

    assert ambiguous.status_code == 400
    assert ambiguous.json()["field"] == "project"
    assert "?project=" in ambiguous.json()["error"]
    assert narrowed.status_code == 200
    assert narrowed.json()["name"] == "in second"


def test_started_after_and_before_bound_the_start_time(client: APIClient) -> None:
    for hour in range(4):
        make_session(client.project, external_id=f"h{hour}", started_at=T0 + timedelta(hours=hour))  # type: ignore[attr-defined]

    response = client.get(
        SESSIONS,
        {"started_after": "2026-11-21T11:00:00Z", "started_before": "2026-11-21T13:00:00Z"},
    )

    assert ids(response) == ["h2", "h1"]


def test_tag_matches_a_whole_tag_in_the_list(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="tagged", tags=["demo", "nightly"])
    make_session(project, external_id="prefix-only", tags=["demo-2"])
    make_session(project, external_id="untagged")

    assert ids(client.get(SESSIONS, {"tag": "demo"})) == ["tagged"]
    assert ids(client.get(SESSIONS, {"tag": "nightly"})) == ["tagged"]


def test_agent_matches_an_agent_row_or_a_summarised_agent_name(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="has-row", agents=("critic",))
    named = make_session(project, external_id="summary-only", agents=())
    Session.objects.filter(pk=named.pk).update(agent_names=["critic"])
    make_session(project, external_id="other", agents=("planner",))

    assert sorted(ids(client.get(SESSIONS, {"agent": "critic"}))) == ["has-row", "summary-only"]


def test_model_finds_sessions_that_called_it(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="claude", model="claude-sonnet")
    make_session(project, external_id="gpt", model="gpt-4o")
    make_session(project, external_id="no-llm", llm_spans=0)

    assert ids(client.get(SESSIONS, {"model": "claude-sonnet"})) == ["claude"]


def test_end_state_has_errors_group_parent_and_text_filters(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="ok", end_state="success", group_key="g1")
    make_session(project, external_id="broken", end_state="fail", failed=1, parent="ok")
    make_session(project, external_id="other", name="Find the WINNER", user_query="who?")

    assert ids(client.get(SESSIONS, {"end_state": "fail"})) == ["broken"]
    assert ids(client.get(SESSIONS, {"has_errors": "true"})) == ["broken"]
    assert sorted(ids(client.get(SESSIONS, {"has_errors": "false"}))) == ["ok", "other"]
    assert ids(client.get(SESSIONS, {"group_key": "g1"})) == ["ok"]
    assert ids(client.get(SESSIONS, {"parent": "ok"})) == ["broken"]
    assert ids(client.get(SESSIONS, {"q": "winner"})) == ["other"]
    assert ids(client.get(SESSIONS, {"q": "brok"})) == ["broken"]


def test_ordering_sorts_by_a_summary_column_either_way(client: APIClient) -> None:
    project = client.project  # type: ignore[attr-defined]
    for llm_spans in (2, 0, 1):
        make_session(project, external_id=f"llm{llm_spans}", llm_spans=llm_spans)

    assert ids(client.get(SESSIONS, {"ordering": "cost"})) == ["llm0", "llm1", "llm2"]
    assert ids(client.get(SESSIONS, {"ordering": "-prompt_tokens"})) == ["llm2", "llm1", "llm0"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"started_after": "yesterday"}, "started_after"),
        ({"end_state": "exploded"}, "end_state"),
        ({"has_errors": "maybe"}, "has_errors"),
        ({"ordering": "name"}, "ordering"),
        ({"page_size": "ten"}, "page_size"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(
    client: APIClient, params: dict[str, str], field: str
) -> None:
    response = client.get(SESSIONS, params)

    assert response.status_code == 400
    body = response.json()
    assert body["field"] == field
    assert body["error"].startswith(f"{field}: ")


def test_the_list_costs_the_same_queries_for_three_rows_or_thirty(
    client: APIClient, django_assert_num_queries: Any, settings: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project = client.project  # type: ignore[attr-defined]
    client.get(SESSIONS)  # the key's first use reads it and writes last_used_at; later ones do not
    params = {"tag": "demo", "model": "gpt-4o", "agent": "planner"}

    for count in (3, 30):
        for _ in range(count - Session.objects.count()):
            make_session(project, tags=["demo"], agents=("planner", "critic"))
        # The page, the page's scores.
        with django_assert_num_queries(2):
            assert len(ids(client.get(SESSIONS, params))) == count


def test_the_session_filter_works_on_a_plain_query_dict_for_the_dashboard(
    client: APIClient,
) -> None:
    project = client.project  # type: ignore[attr-defined]
    make_session(project, external_id="tagged", tags=["demo"], failed=1)
    make_session(project, external_id="plain")
    sessions = Session.objects.filter(project=project)

    matching = SessionFilter(QueryDict("tag=demo&has_errors=1&ordering=-cost"), queryset=sessions)
    invalid = SessionFilter(QueryDict("has_errors=maybe"), queryset=sessions)

    assert [session.external_id for session in matching.qs] == ["tagged"]
    assert not invalid.is_valid()
    assert list(invalid.errors) == ["has_errors"]


def test_the_browsable_api_renders_the_list_with_its_filters_and_pages(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    project, _ = make_project(name="Mine", user=user)
    make_session(project, external_id="one")

    response = user_client(user).get(SESSIONS, {"page_size": 1}, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert b"has_errors" in response.content
