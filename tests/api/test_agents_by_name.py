"""/api/v1/agents/ folds the per-session agents by name (read from the rollups);
/api/v1/agent-instances/ keeps one row per agent per session. Both answer CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.refresh import refresh_project
from tests.builders import make_message, make_project, make_session
from tests.responses import streamed

pytestmark = pytest.mark.django_db


@pytest.fixture
def crew() -> tuple[Any, str]:
    """Two runs of the same crew a day apart: planner in both, critic in the second."""
    project, key = make_project()
    now = timezone.now()
    first = make_session(project, started_at=now - timedelta(days=1), spans=4, failed=1)
    second = make_session(
        project, started_at=now - timedelta(hours=1), agents=("planner", "critic"), spans=2
    )
    make_message(first, sender="agent-1", receivers=["critic"], at=now - timedelta(days=1))
    make_message(second, sender="planner", receivers=["critic"], status="dead_lettered", at=now)
    make_message(second, sender="critic", receivers=["planner"], at=now)
    refresh_project(project.pk, since=now - timedelta(days=3), now=now)
    return project, key


def test_agents_are_listed_once_per_name_across_sessions(
    key_client: Callable[[str], APIClient], crew: tuple[Any, str]
) -> None:
    _, key = crew
    answer = key_client(key).get(reverse("api:agent-list"), {"days": 7})
    assert answer.status_code == 200, answer.content
    rows = {row["name"]: row for row in answer.json()["results"]}

    assert set(rows) == {"planner", "critic"}
    planner = rows["planner"]
    # builders: every span belongs to the session's first agent ("agent-1", named planner).
    assert (planner["sessions"], planner["calls"], planner["errors"]) == (2, 6, 1)
    assert planner["error_rate"] == pytest.approx(1 / 6)
    assert (planner["sent"], planner["failed"]) == (2, 1)  # by its id in one run, its name next
    assert sum(planner["daily_calls"]) == 6 and len(planner["daily_calls"]) == 8
    assert planner["p95_ms"] is not None and planner["cost"] > 0
    assert (rows["critic"]["sessions"], rows["critic"]["calls"], rows["critic"]["sent"]) == (
        1,
        0,
        1,
    )


def test_the_name_list_answers_csv_and_narrows_to_one_name(
    key_client: Callable[[str], APIClient], crew: tuple[Any, str]
) -> None:
    _, key = crew
    client = key_client(key)
    params: dict[str, str | int] = {"format": "csv", "days": 7}
    answer = client.get(reverse("api:agent-list"), params)
    assert answer["Content-Disposition"] == 'attachment; filename="agents.csv"'
    rows = list(csv.DictReader(io.StringIO(streamed(answer).decode())))
    assert [row["name"] for row in rows] == ["planner", "critic"]
    assert rows[0]["sessions"] == "2"

    one = client.get(reverse("api:agent-list"), {"name": "critic"}).json()["results"]
    assert [row["name"] for row in one] == ["critic"]


def test_the_per_session_instances_stay_listed_and_filterable(
    key_client: Callable[[str], APIClient], crew: tuple[Any, str]
) -> None:
    _, key = crew
    client = key_client(key)
    url = reverse("api:agent-instance-list")
    rows = client.get(url).json()["results"]
    assert sorted(row["name"] for row in rows) == ["critic", "planner", "planner"]
    assert len(client.get(url, {"name": "planner"}).json()["results"]) == 2
    answer = client.get(url, {"format": "csv"})
    assert answer["Content-Disposition"] == 'attachment; filename="agent-instances.csv"'


def test_a_bad_range_is_refused_naming_the_parameter(
    key_client: Callable[[str], APIClient], crew: tuple[Any, str]
) -> None:
    _, key = crew
    answer = key_client(key).get(reverse("api:agent-list"), {"days": "lots"})
    assert answer.status_code == 400
    assert answer.json()["field"] == "days"
