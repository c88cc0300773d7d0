"""Scores sent in native batches: stored, idempotent by id, updated by a changed re-send, and
carried by test results onto the sessions they produced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from ingest.models import Score, Session, TestResult

pytestmark = pytest.mark.django_db


def post(client: Client, key: str, *records: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/ingest",
        data=json.dumps({"records": list(records)}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def score(**fields: Any) -> dict[str, Any]:
    return {
        "type": "score",
        "id": "sc1",
        "session_id": "s1",
        "name": "judge",
        "value": 0.8,
        "at": "2026-11-21T10:05:00Z",
        **fields,
    }


def test_a_score_is_stored_on_its_session_and_span(project_with_key: tuple[Any, str]) -> None:
    project, key = project_with_key
    answer = post(Client(), key, score(span_id="e1", comment="good", author="judge-v2"))
    assert answer.status_code == 200
    assert answer.json()["accepted"] == 1
    stored = Score.objects.get(project=project)
    assert stored.session.external_id == "s1"  # inferred until its start arrives
    assert (stored.name, stored.value, stored.data_type, stored.span_id) == (
        "judge",
        0.8,
        "numeric",
        "e1",
    )
    assert (stored.comment, stored.author, stored.source) == ("good", "judge-v2", "api")


def test_the_same_score_sent_again_is_a_duplicate_and_a_changed_one_updates_it(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    client = Client()
    post(client, key, score())
    again = post(client, key, score())
    assert again.json()["results"][0]["status"] == "duplicate"
    changed = post(client, key, score(value=0.2, comment="on a second look, wrong"))
    assert changed.json()["results"][0]["status"] == "accepted"
    [stored] = Score.objects.filter(project=project)
    assert (stored.value, stored.comment) == (0.2, "on a second look, wrong")


def test_a_bad_score_is_refused_naming_its_field_and_the_others_are_kept(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    answer = post(Client(), key, score(value="high", data_type="numeric"), score(id="sc2"))
    body = answer.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["results"][0]["field"] == "records[0].value"
    assert list(Score.objects.filter(project=project).values_list("client_id", flat=True)) == [
        "sc2"
    ]


def test_a_test_result_puts_its_scores_on_the_result_and_on_each_session_it_produced(
    project_with_key: tuple[Any, str],
) -> None:
    project, key = project_with_key
    result = {
        "type": "test_result",
        "id": "r1",
        "run_id": "run-1",
        "test_id": "tests/test_refund.py::test_refund",
        "outcome": "fail",
        "session_ids": ["s1", "s2"],
        "scores": {"correct": False, "judge": 0.3},
    }
    post(Client(), key, result)
    assert TestResult.objects.get().scores == [
        {"name": "correct", "data_type": "boolean", "value": 0.0, "label": "false", "comment": ""},
        {"name": "judge", "data_type": "numeric", "value": 0.3, "label": "", "comment": ""},
    ]
    rows = Score.objects.filter(project=project).order_by("session__external_id", "name")
    assert [(s.session.external_id, s.name, s.value, s.source) for s in rows] == [
        ("s1", "correct", 0.0, "eval"),
        ("s1", "judge", 0.3, "eval"),
        ("s2", "correct", 0.0, "eval"),
        ("s2", "judge", 0.3, "eval"),
    ]
    assert rows[0].author == "tests/test_refund.py::test_refund"
    # The test re-run passes: its scores are replaced, not added to.
    post(Client(), key, {**result, "id": "r2", "outcome": "pass", "scores": {"judge": 0.9}})
    judged = Score.objects.filter(project=project, name="judge")
    assert sorted(judged.values_list("value", flat=True)) == [0.9, 0.9]  # type: ignore[type-var]  # no value is None here: the comparison would fail
    assert Session.objects.filter(project=project).count() == 2
