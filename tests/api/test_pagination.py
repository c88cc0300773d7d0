"""Cursor pagination: next and previous links walk every row exactly once, ties and nulls too."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from ingest.models import Project, Session
from tests.builders import T0, make_project

pytestmark = pytest.mark.django_db

SESSIONS = reverse("api:session-list")


def bulk_sessions(project: Project, starts: list[Any], *, duration_ms: Any = None) -> None:
    Session.objects.bulk_create(
        Session(project=project, external_id=f"s{i:04}", started_at=start, duration_ms=duration_ms)
        for i, start in enumerate(starts)
    )


def flat(pages: list[list[str]]) -> list[str]:
    return [row for page in pages for row in page]


def walk(client: APIClient, url: str, params: dict[str, Any]) -> list[list[str]]:
    """Follow `next` links from the first page; the ids of each page."""
    pages = []
    response = client.get(url, params)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        pages.append([row["id"] for row in body["results"]])
        if body["next"] is None:
            return pages
        response = client.get(body["next"])


@pytest.fixture
def project_and_client(key_client: Callable[[str], APIClient]) -> tuple[Project, APIClient]:
    project, raw_key = make_project()
    return project, key_client(raw_key)


def test_next_links_walk_every_row_once_in_order(
    project_and_client: tuple[Project, APIClient],
) -> None:
    project, client = project_and_client
    bulk_sessions(project, [T0 + timedelta(minutes=i) for i in range(25)])

    pages = walk(client, SESSIONS, {"page_size": 7})

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert flat(pages) == [f"s{i:04}" for i in reversed(range(25))]


def test_more_than_a_thousand_rows_with_the_same_value_are_walked(
    project_and_client: tuple[Project, APIClient],
) -> None:
    """DRF's own cursor skips over ties with an offset capped at 1,000; ours keys on the id."""
    project, client = project_and_client
    bulk_sessions(project, [T0] * 1005 + [None] * 3)

    pages = walk(client, SESSIONS, {"page_size": 400})
    rows = flat(pages)

    assert len(rows) == len(set(rows)) == 1008
    assert rows[-3:] == ["s1007", "s1006", "s1005"]  # no start time: last, even newest-first


def test_nulls_come_last_in_either_direction(project_and_client: tuple[Project, APIClient]) -> None:
    project, client = project_and_client
    bulk_sessions(project, [T0, None, T0 + timedelta(hours=1), None])

    ascending = flat(walk(client, SESSIONS, {"ordering": "started_at", "page_size": 1}))
    descending = flat(walk(client, SESSIONS, {"ordering": "-started_at", "page_size": 1}))

    assert ascending == ["s0000", "s0002", "s0001", "s0003"]
    assert descending == ["s0002", "s0000", "s0003", "s0001"]


def test_previous_links_walk_back_through_the_same_pages(
    project_and_client: tuple[Project, APIClient],
) -> None:
    project, client = project_and_client
    bulk_sessions(project, [T0] * 4 + [None] * 2 + [T0 + timedelta(minutes=i) for i in range(6)])
    params: dict[str, str | int] = {"page_size": 5, "ordering": "-started_at"}
    forward = walk(client, SESSIONS, params)

    backward: list[list[int]] = []
    body = client.get(SESSIONS, params).json()
    while body["next"]:
        body = client.get(body["next"]).json()
    while True:
        backward.insert(0, [row["id"] for row in body["results"]])
        if body["previous"] is None:
            break
        body = client.get(body["previous"]).json()

    assert backward == forward
    assert len(flat(forward)) == 12


def test_page_size_is_capped_at_a_thousand(project_and_client: tuple[Project, APIClient]) -> None:
    project, client = project_and_client
    bulk_sessions(project, [T0] * 1001)

    body = client.get(SESSIONS, {"page_size": 5000}).json()

    assert len(body["results"]) == 1000
    assert body["next"] is not None


def test_a_cursor_from_another_ordering_is_refused(
    project_and_client: tuple[Project, APIClient],
) -> None:
    project, client = project_and_client
    bulk_sessions(project, [T0 + timedelta(minutes=i) for i in range(3)])
    next_url = client.get(SESSIONS, {"page_size": 1}).json()["next"]

    response = client.get(next_url + "&ordering=cost")

    assert response.status_code == 400
    assert response.json()["field"] == "cursor"
