"""GET and POST /api/v1/scores/: filters, CSV, key scopes, people's scores and their 400s."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from ingest.models import ApiKey, AuditEntry, Membership, Project, Score
from tests.responses import streamed

pytestmark = pytest.mark.django_db


def send(client: Client, body: Any, *, key: str = "", query: str = "") -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return client.post(
        f"/api/v1/scores/{query}",
        data=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def some_scores(key: str) -> None:
    answer = send(
        Client(),
        {
            "scores": [
                {"id": "a", "session_id": "s1", "name": "judge", "value": 0.9},
                {"id": "b", "session_id": "s2", "name": "judge", "value": 0.2, "source": "eval"},
                {"id": "c", "session_id": "s2", "name": "tone", "value": "rude"},
                {"id": "d", "session_id": "s3", "name": "correct", "value": False},
            ]
        },
        key=key,
    )
    assert answer.status_code == 200, answer.content


def test_a_key_with_the_ingest_scope_sends_scores_and_gets_them_back(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    answer = send(Client(), {"session_id": "s1", "name": "judge", "value": 4, "id": "x1"}, key=key)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["accepted"], body["duplicates"]) == (1, 0)
    [shown] = body["scores"]
    assert (shown["id"], shown["session_id"], shown["value"], shown["source"]) == (
        "x1",
        "s1",
        4.0,
        "api",
    )
    assert shown["author"].startswith("key ")  # the key's label when the sender names no one
    again = send(Client(), {"session_id": "s1", "name": "judge", "value": 4, "id": "x1"}, key=key)
    assert again.json()["duplicates"] == 1
    assert Score.objects.filter(project=project).count() == 1


def test_a_bad_score_is_a_400_naming_its_field_and_nothing_is_stored(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    body = [
        {"session_id": "s1", "name": "judge", "value": 1},
        {"session_id": "s1", "name": "judge", "value": "very", "data_type": "numeric"},
    ]
    answer = send(Client(), body, key=key)
    assert answer.status_code == 400
    assert answer.json()["field"] == "scores[1].value"
    assert "must be a number" in answer.json()["error"]
    assert not Score.objects.filter(project=project).exists()


def test_a_read_only_key_may_list_scores_but_not_send_them(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    some_scores(key)
    _, reader = ApiKey.generate(project, "reader", scopes=["read"])
    refused = send(Client(), {"session_id": "s1", "name": "judge", "value": 1}, key=reader)
    assert refused.status_code == 403
    assert "ingest" in refused.json()["error"]
    listed = Client().get("/api/v1/scores/", headers={"Authorization": f"Bearer {reader}"})
    assert listed.status_code == 200
    _, sender = ApiKey.generate(project, "sender", scopes=["ingest"])
    assert (
        Client().get("/api/v1/scores/", headers={"Authorization": f"Bearer {sender}"}).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("query", "ids"),
    [
        ("?session=s2", ["c", "b"]),
        ("?name=judge&value_max=0.5", ["b"]),
        ("?source=eval", ["b"]),
        ("?data_type=boolean", ["d"]),
        ("?name=judge&value_min=0.5", ["a"]),
    ],
)
def test_the_list_filters_by_session_name_source_and_value(
    project_with_key: tuple[Any, str], query: str, ids: list[str]
) -> None:
    _, key = project_with_key
    some_scores(key)
    listed = Client().get(f"/api/v1/scores/{query}", headers={"Authorization": f"Bearer {key}"})
    assert [row["id"] for row in listed.json()["results"]] == ids


def test_the_csv_has_every_score_with_the_json_fields(project_with_key: tuple[Any, str]) -> None:
    _, key = project_with_key
    some_scores(key)
    answer = Client().get("/api/v1/scores/?format=csv", headers={"Authorization": f"Bearer {key}"})
    rows = list(csv.DictReader(io.StringIO(streamed(answer).decode())))
    assert len(rows) == 4
    assert {row["name"] for row in rows} == {"judge", "tone", "correct"}
    assert {row["label"] for row in rows if row["name"] == "correct"} == {"false"}


def test_a_member_posts_a_human_score_in_their_name_and_it_is_audited(
    django_user_model: Any,
) -> None:
    project = Project.objects.create(name="P", slug="p")
    person = django_user_model.objects.create_user("ann", password="pw")
    Membership.objects.create(user=person, project=project, role=Membership.Role.MEMBER)
    client = Client()
    client.force_login(person)
    body = {"session_id": "s1", "name": "helpful", "value": True, "source": "api", "author": "x"}
    answer = send(client, body, query="?project=p")
    assert answer.status_code == 200, answer.content
    stored = Score.objects.get(project=project)
    assert (stored.source, stored.author, stored.label) == ("human", "ann", "true")
    entry = AuditEntry.objects.get(project=project)
    assert entry.action == AuditEntry.Action.SCORE_SAVE
    assert "helpful" in entry.target


def test_a_viewer_may_not_post_a_score(django_user_model: Any) -> None:
    project = Project.objects.create(name="P", slug="p")
    person = django_user_model.objects.create_user("vic", password="pw")
    Membership.objects.create(user=person, project=project, role=Membership.Role.VIEWER)
    client = Client()
    client.force_login(person)
    answer = send(client, {"session_id": "s1", "name": "x", "value": 1}, query="?project=p")
    assert answer.status_code == 403
    assert "member" in answer.json()["error"]
    assert not Score.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize(
    ("condition", "sessions"),
    [
        ("judge:lt:0.5", ["s2"]),
        ("judge:gte:0.5", ["s1"]),
        ("judge", ["s1", "s2"]),
        ("correct:eq:false", ["s3"]),
        ("tone:eq:RUDE", ["s2"]),
        ("tone:ne:rude", []),
    ],
)
def test_the_sessions_list_filters_by_a_score_condition(
    project_with_key: tuple[Any, str], condition: str, sessions: list[str]
) -> None:
    _, key = project_with_key
    some_scores(key)
    listed = Client().get(
        "/api/v1/sessions/", {"score": condition}, headers={"Authorization": f"Bearer {key}"}
    )
    assert sorted(row["id"] for row in listed.json()["results"]) == sessions


@pytest.mark.parametrize("condition", ["judge:lt", "judge:about:3", "tone:lt:rude", ":eq:1"])
def test_a_bad_score_condition_is_a_400_naming_the_parameter(
    project_with_key: tuple[Any, str], condition: str
) -> None:
    _, key = project_with_key
    listed = Client().get(
        "/api/v1/sessions/", {"score": condition}, headers={"Authorization": f"Bearer {key}"}
    )
    assert listed.status_code == 400
    assert listed.json()["field"] == "score"


def test_the_sessions_csv_carries_each_sessions_scores(project_with_key: tuple[Any, str]) -> None:
    _, key = project_with_key
    some_scores(key)
    send(Client(), {"id": "e", "session_id": "s2", "name": "judge", "value": 0.4}, key=key)
    answer = Client().get(
        "/api/v1/sessions/?format=csv", headers={"Authorization": f"Bearer {key}"}
    )
    rows = list(csv.DictReader(io.StringIO(streamed(answer).decode())))
    assert {row["id"]: row["scores"] for row in rows} == {
        "s1": "judge=0.9",
        "s2": "judge=0.3; tone=rude",
        "s3": "correct=false",
    }


def test_a_test_results_scores_are_in_the_api_and_on_its_page(
    project_with_key: tuple[Any, str], admin_client: Client
) -> None:
    _, key = project_with_key
    result = {
        "type": "test_result",
        "id": "r1",
        "run_id": "run-1",
        "test_id": "t::refund",
        "outcome": "fail",
        "scores": [{"name": "judge", "value": 0.25, "comment": "<b>too generous</b>"}],
    }
    Client().post(
        "/api/v1/ingest",
        data=json.dumps({"records": [result]}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    listed = Client().get("/api/v1/test-results/", headers={"Authorization": f"Bearer {key}"})
    [row] = listed.json()["results"]
    assert row["scores"] == [
        {
            "name": "judge",
            "data_type": "numeric",
            "value": 0.25,
            "label": "",
            "comment": "<b>too generous</b>",
        }
    ]
    page = admin_client.get(f"/tests/results/{row['id']}/").content.decode()
    assert "judge" in page and "0.25" in page
    assert "&lt;b&gt;too generous&lt;/b&gt;" in page
