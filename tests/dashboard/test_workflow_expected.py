"""A running workflow run's expected duration from its name's history: read, computed and shown
on the run page and in the workflows API (tests/analytics/test_workflow_forecast.py: the math)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.refresh import expected_workflow_durations
from ingest.models import Step, Workflow
from tests.builders import make_project, make_session, make_user, make_workflow
from tests.responses import streamed

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs() -> dict[str, Any]:
    """Three finished "deploy" runs (plan 10 s, then build 50-70 s) and one running since 30 s
    ago whose plan took 20 s."""
    user = make_user()
    project = make_project(user=user)[0]
    session = make_session(project)
    now = timezone.now()
    for day, build in ((1, 50), (2, 60), (3, 70)):
        make_workflow(
            session,
            name="deploy",
            at=now - timedelta(days=day),
            steps=[("plan", 0, 10, []), ("build", 10, 10 + build, ["plan"])],
        )
    running = make_workflow(
        session,
        name="deploy",
        at=now - timedelta(seconds=30),
        status=Workflow.Status.RUNNING,
        steps=[("plan", 0, 20, []), ("build", 20, 21, ["plan"])],
    )
    Workflow.objects.filter(pk=running.pk).update(ended_at=None, duration_ms=None)
    Step.objects.filter(workflow=running, step_id="build").update(
        status=Step.Status.RUNNING, ended_at=None, duration_ms=None
    )
    return {"user": user, "project": project, "running": running}


def test_a_running_run_expects_the_median_rest_after_its_finished_steps(
    runs: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    running = Workflow.objects.get(pk=runs["running"].pk)
    with django_assert_max_num_queries(3):
        forecasts = expected_workflow_durations([running], now=timezone.now())
    forecast = forecasts[running.pk]
    assert (forecast.basis, forecast.runs) == ("steps", 3)
    assert forecast.total_p50_ms == pytest.approx(80_000, abs=1)  # plan ended at 20 s, + 60 s
    assert forecast.remaining_p50_ms == pytest.approx(50_000, abs=1_000)


def test_finished_runs_get_no_forecast(runs: dict[str, Any]) -> None:
    finished = list(Workflow.objects.exclude(pk=runs["running"].pk))
    assert expected_workflow_durations(finished, now=timezone.now()) == {}


def test_the_run_page_shows_the_expected_duration(runs: dict[str, Any], client: Client) -> None:
    client.force_login(runs["user"])
    page = client.get(f"/workflows/{runs['running'].pk}/").content.decode()
    assert "Expected" in page and "1m 20s in all" in page


def test_the_workflows_api_carries_the_expected_duration_of_running_runs(
    runs: dict[str, Any],
) -> None:
    client = APIClient()
    client.force_login(runs["user"])
    rows = client.get("/api/v1/workflows/").json()["results"]
    by_status = {row["status"]: row["expected_duration"] for row in rows}
    assert by_status["success"] is None
    assert by_status["running"]["basis"] == "steps"
    assert by_status["running"]["total_p50_ms"] == pytest.approx(80_000, abs=1)
    csv_text = streamed(client.get("/api/v1/workflows/?format=csv")).decode()
    assert "expected_duration" in csv_text.splitlines()[0]
