"""`?format=csv` on the list endpoints: the same rows as JSON, all of them, streamed and safe."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from ingest.models import Session
from tests.builders import T0, make_metric, make_project, make_rejection, make_session
from tests.responses import streamed

pytestmark = pytest.mark.django_db


def read_csv(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    assert response.streaming
    text = streamed(response).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def project_and_client(key_client: Callable[[str], APIClient]) -> tuple[Any, APIClient]:
    project, raw_key = make_project(name="Acme")
    return project, key_client(raw_key)


def test_sessions_csv_has_the_json_fields_as_header_and_the_same_rows(
    project_and_client: tuple[Any, APIClient],
) -> None:
    project, client = project_and_client
    for hour in range(3):
        make_session(project, external_id=f"s{hour}", started_at=T0 + timedelta(hours=hour))
    url = reverse("api:session-list")

    json_rows = client.get(url, {"ordering": "started_at"}).json()["results"]
    response = client.get(url, {"ordering": "started_at", "format": "csv"})
    csv_rows = read_csv(response)

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sessions.csv"'
    assert list(csv_rows[0]) == list(json_rows[0])
    assert [row["id"] for row in csv_rows] == [row["id"] for row in json_rows] == ["s0", "s1", "s2"]
    assert csv_rows[0]["tags"] == "[]"
    assert csv_rows[0]["has_errors"] == "false"
    assert csv_rows[0]["url"] == json_rows[0]["url"]


def test_csv_applies_the_filters(project_and_client: tuple[Any, APIClient]) -> None:
    project, client = project_and_client
    make_session(project, external_id="broken", failed=1)
    make_session(project, external_id="fine")

    rows = read_csv(
        client.get(reverse("api:session-list"), {"has_errors": "true", "format": "csv"})
    )

    assert [row["id"] for row in rows] == ["broken"]


def test_csv_streams_every_row_past_the_largest_page(
    project_and_client: tuple[Any, APIClient],
) -> None:
    """2,500 events: more than the 1,000-row page limit and more than one 2,000-row chunk."""
    project, client = project_and_client
    make_session(project, external_id="big", spans=2500, llm_spans=0, transcript=())

    rows = read_csv(client.get(reverse("api:event-list"), {"session": "big", "format": "csv"}))

    assert len(rows) == 2500
    assert len({row["id"] for row in rows}) == 2500


def test_csv_neutralises_formulas_but_keeps_negative_numbers(
    project_and_client: tuple[Any, APIClient],
) -> None:
    project, client = project_and_client
    make_session(project, external_id="=cmd|' /C calc'!A0", name="@x", user_query="+1")
    session = make_session(project, external_id="plain", started_at=T0 - timedelta(hours=1))
    make_metric(project, session=session, name="-delta", value=-3)

    sessions = read_csv(client.get(reverse("api:session-list"), {"format": "csv"}))
    metrics = read_csv(client.get(reverse("api:metric-list"), {"format": "csv"}))

    assert sessions[0]["id"] == "'=cmd|' /C calc'!A0"
    assert sessions[0]["name"] == "'@x"
    assert sessions[0]["user_query"] == "'+1"
    assert metrics[0]["name"] == "'-delta"
    assert metrics[0]["value"] == "-3.0"


def test_a_bad_filter_with_csv_is_a_json_400(project_and_client: tuple[Any, APIClient]) -> None:
    _, client = project_and_client

    response = client.get(reverse("api:session-list"), {"format": "csv", "has_errors": "maybe"})

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["field"] == "has_errors"


@pytest.mark.parametrize(
    ("name", "args", "filename"),
    [
        ("api:project-list", [], "projects.csv"),
        ("api:event-list", [], "events.csv"),
        ("api:session-event-list", ["s1"], "events.csv"),
        ("api:session-transcript", ["s1"], "transcript.csv"),
        ("api:agent-instance-list", [], "agent-instances.csv"),
        ("api:status-line-list", [], "status-lines.csv"),
        ("api:metric-list", [], "metrics.csv"),
        ("api:ingest-problem-list", [], "ingest-problems.csv"),
    ],
)
def test_every_list_answers_csv(
    project_and_client: tuple[Any, APIClient], name: str, args: list[str], filename: str
) -> None:
    project, client = project_and_client
    session = make_session(project, external_id="s1", transcript=(("user", "hi"), ("agent", "…")))
    make_metric(project, session=session)
    make_rejection(project)
    url = reverse(name, args=args)

    json_ids = [str(row.get("id", row.get("slug"))) for row in client.get(url).json()["results"]]
    response = client.get(url, {"format": "csv"})

    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert [row.get("id", row.get("slug")) for row in read_csv(response)] == json_ids
    assert json_ids


def test_csv_of_sessions_takes_a_constant_number_of_queries(
    project_and_client: tuple[Any, APIClient], django_assert_num_queries: Any, settings: Any
) -> None:
    settings.OBSERVATORY_API_KEY_CACHE_SECONDS = 60
    project, client = project_and_client
    client.get(reverse("api:session-list"))  # the key's first use reads it, writes last_used_at
    for _ in range(5):
        make_session(project)

    # The sessions and their scores (one prefetch per chunk of rows); the key is cached.
    with django_assert_num_queries(2):
        rows = read_csv(client.get(reverse("api:session-list"), {"format": "csv"}))

    assert len(rows) == Session.objects.count()
