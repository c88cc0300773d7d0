"""The sessions list through Django's test client: columns, filters, the export link, sorting,
paging, htmx rows and queries."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from tests.builders import T0, make_project, make_session
from tests.dashboard.conftest import SESSIONS, detail_url, names
from tests.responses import streamed

pytestmark = pytest.mark.django_db


def test_the_sessions_list_shows_each_sessions_columns(logged_in: Client, project: Any) -> None:
    make_session(
        project,
        name="arena round",
        spans=4,
        llm_spans=2,
        failed=1,
        tags=["demo"],
        agents=("planner", "critic"),
        model="gpt-4o",
    )

    response = logged_in.get(SESSIONS)

    html = response.content.decode()
    for text in ("arena round", "5.0 s", "success", "200 / 40", "$0.0020", "critic", "gpt-4o"):
        assert text in html
    assert '<a class="chip tag link" href="?tag=demo">demo</a>' in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"end_state": "fail"}, ["failed"]),
        ({"has_errors": "true"}, ["failed"]),
        ({"has_errors": "false"}, ["tagged", "plain"]),
        ({"tag": "beta"}, ["tagged"]),
        ({"agent": "critic"}, ["failed"]),
        ({"model": "claude"}, ["tagged"]),
        ({"q": "plai"}, ["plain"]),
        ({"group_key": "g1"}, ["failed", "plain"]),
        ({"started_after": "2026-11-21T10:30"}, ["tagged"]),
        ({"started_before": "2026-11-21T09:30"}, ["plain"]),
    ],
)
def test_filters_change_the_rows(
    logged_in: Client, project: Any, params: dict[str, str], expected: list[str]
) -> None:
    make_session(project, name="plain", started_at=T0 - timedelta(hours=1), group_key="g1")
    make_session(
        project, name="tagged", started_at=T0 + timedelta(hours=1), tags=["beta"], model="claude"
    )
    make_session(
        project, name="failed", failed=1, end_state="fail", agents=("critic",), group_key="g1"
    )

    assert names(logged_in.get(SESSIONS, params)) == expected


def test_the_empty_fields_a_submitted_filter_form_sends_are_ignored_here_and_in_the_csv(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="only")
    form = dict.fromkeys(
        [
            "q",
            "range",
            "started_after",
            "started_before",
            "end_state",
            "has_errors",
            "tag",
            "agent",
            "model",
            "group_key",
            "ordering",
        ],
        "",
    )

    response = logged_in.get(SESSIONS, form)
    export = logged_in.get(response.context["export_url"])

    assert names(response) == ["only"]
    assert not response.context["filterset"].errors
    assert export.status_code == 200
    assert len(streamed(export).splitlines()) == 2


def test_a_bad_filter_value_is_shown_as_an_error_instead_of_failing(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="only")

    response = logged_in.get(SESSIONS, {"has_errors": "maybe"})

    assert response.status_code == 200
    assert "has_errors" in response.context["filterset"].errors
    assert b'class="form-errors inline"' in response.content


def test_a_range_choice_becomes_a_started_after_filter_in_the_export_link(
    logged_in: Client, project: Any
) -> None:
    response = logged_in.get(SESSIONS, {"range": "24h", "tag": "x"})

    export = response.context["export_url"]
    assert export.startswith("/api/v1/sessions/?")
    assert "started_after=" in export and "range=" not in export
    assert "tag=x" in export and "format=csv" in export and "project=acme" in export


def test_the_export_link_gives_exactly_the_rows_on_the_page(
    logged_in: Client, project: Any
) -> None:
    make_session(project, external_id="keep-1", name="keep", tags=["beta"])
    make_session(project, external_id="keep-2", name="keep too", tags=["beta"], failed=1)
    make_session(project, external_id="drop", name="drop")
    other, _ = make_project(name="Other", user=project.members.first())
    make_session(other, external_id="other-project", tags=["beta"])

    page = logged_in.get(SESSIONS, {"tag": "beta", "ordering": "-error_count", "page": "1"})
    export = logged_in.get(page.context["export_url"])

    assert export.status_code == 200, export.content[:500]
    body = streamed(export).decode()
    rows = list(csv.DictReader(io.StringIO(body)))
    page_ids = [s.external_id for s in page.context["sessions"]]
    assert page_ids == ["keep-2", "keep-1"]
    assert [row["id"] for row in rows] == page_ids


def test_sorting_by_a_column_header_orders_rows_and_flips_on_the_next_click(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="few", spans=1)
    make_session(project, name="many", spans=5, started_at=T0 - timedelta(hours=1))

    first = logged_in.get(SESSIONS)
    events_column = next(c for c in first.context["columns"] if c["field"] == "event_count")
    descending = logged_in.get(SESSIONS, {"ordering": events_column["next"]})
    flipped = next(c for c in descending.context["columns"] if c["field"] == "event_count")

    assert names(first) == ["few", "many"]  # newest first by default
    assert names(descending) == ["many", "few"]
    assert flipped["active"] and flipped["descending"] and flipped["next"] == "event_count"
    assert names(logged_in.get(SESSIONS, {"ordering": "event_count"})) == ["few", "many"]
    assert b'aria-sort="descending"' in descending.content


def test_the_list_pages_by_fifty(logged_in: Client, project: Any) -> None:
    for i in range(51):
        make_session(project, name=f"s{i:02d}", started_at=T0 + timedelta(minutes=i), spans=0)

    first, second = logged_in.get(SESSIONS), logged_in.get(SESSIONS, {"page": "2"})

    assert len(names(first)) == 50 and names(first)[0] == "s50"
    assert names(second) == ["s00"]
    assert b"Page 2 of 2" in second.content


def test_an_htmx_request_gets_only_the_rows_and_the_response_varies_on_it(
    logged_in: Client, project: Any
) -> None:
    make_session(project, name="row")

    full = logged_in.get(SESSIONS)
    partial = logged_in.get(SESSIONS, {"q": "row"}, headers={"HX-Request": "true"})
    restore = logged_in.get(
        SESSIONS, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )

    assert b"<html" in full.content and b'id="filters"' in full.content
    assert partial.content.lstrip().startswith(b'<div id="rows"')
    assert b"<html" not in partial.content and b"row" in partial.content
    assert "HX-Request" in partial["Vary"] and "HX-Request" in full["Vary"]
    assert b"<html" in restore.content


def test_group_and_parent_links_lead_to_the_group_and_the_parent(
    logged_in: Client, project: Any
) -> None:
    parent = make_session(project, external_id="parent-1", name="parent", group_key="batch 7")
    make_session(project, name="child", parent="parent-1", group_key="batch 7")
    make_session(project, name="orphan", parent="never-arrived")

    html = logged_in.get(SESSIONS).content.decode()

    assert 'href="?group_key=batch+7"' in html
    assert f'href="{detail_url(parent)}"' in html
    assert "parent (missing)" in html
    assert names(logged_in.get(SESSIONS, {"group_key": "batch 7"})) == ["child", "parent"]
    assert names(logged_in.get(SESSIONS, {"parent": "parent-1"})) == ["child"]


@pytest.mark.parametrize("count", [2, 20])
def test_the_sessions_list_runs_the_same_queries_for_few_and_many_rows(
    logged_in: Client, project: Any, django_assert_num_queries: Any, count: int
) -> None:
    make_session(project, external_id="parent", spans=0)
    for _ in range(count):
        make_session(project, spans=2, parent="parent", tags=["t"], agents=("a", "b"))
    logged_in.get(SESSIONS)  # remembers the project in the Django session

    # session, user, projects, count, page, their scores (the column), parents, detector
    # flags, anomalies (badges)
    with django_assert_num_queries(9):
        response = logged_in.get(SESSIONS, {"tag": "t"})

    assert len(response.context["sessions"]) == count
