"""The stored test analysis: pass-rate days (pure), the store's upsert (idempotent, stale rows
dropped), the debounce mark, and the API and pages reading what the refresh stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from django.test import Client
from rest_framework.test import APIClient

from analytics import queries
from analytics.models import (
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestPassRateDay,
)
from analytics.refresh import fetch_and_compute_test_analysis
from analytics.store import (
    claim_test_analysis,
    mark_test_analysis_pending,
    save_test_analysis,
)
from analytics.tasks import refresh_test_analysis_task
from analytics.testanalysis import pass_rate_days
from ingest.models import TestResult
from tests.builders import make_project, make_test_history

NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
T0 = NOW - timedelta(days=2)
HISTORIES = {
    "t::stable": "PPPPPPPPPP",
    "t::flaky": "PFPPFPPFPP",
    "t::broken": "PPPPPPFFFF",
}


def test_pass_rate_days_count_decisive_results_per_day_tier_and_suite() -> None:
    results = pd.DataFrame(
        {
            "result_pk": [1, 2, 3, 4, 5],
            "run_pk": [1, 1, 2, 2, 3],
            "run_started_at": pd.to_datetime(
                [
                    "2026-11-20 09:00",
                    "2026-11-20 09:00",
                    "2026-11-20 18:00",
                    "2026-11-20 18:00",
                    "2026-11-21 01:00",
                ],
                utc=True,
            ),
            "commit": "c",
            "branch": "main",
            "suite": ["a", "a", "a", "a", "b"],
            "tier": "unit",
            "test_id": ["x", "y", "x", "y", "x"],
            "name": ["x", "y", "x", "y", "x"],
            "outcome": ["pass", "skip", "fail", "pass", "error"],
            "duration_ms": 1.0,
        }
    )

    days = pass_rate_days(results)

    assert days.to_dict("records") == [
        {
            "day": NOW.date() - timedelta(days=1),
            "tier": "unit",
            "suite": "a",
            "passed": 2,
            "failed": 1,
            "total": 3,
            "runs": 2,
        },
        {
            "day": NOW.date(),
            "tier": "unit",
            "suite": "b",
            "passed": 0,
            "failed": 1,
            "total": 1,
            "runs": 1,
        },
    ]


@pytest.mark.django_db
def test_storing_the_same_analysis_twice_leaves_the_same_rows() -> None:
    project, _ = make_project()
    make_test_history(project, HISTORIES, started_at=T0)
    analysis = fetch_and_compute_test_analysis(project.pk, now=NOW)

    save_test_analysis(project.pk, analysis, now=NOW)
    first = _stored_rows(project.pk)
    save_test_analysis(project.pk, analysis, now=NOW)

    assert _stored_rows(project.pk) == first
    regression = StoredTestRegression.objects.get(project=project, window_runs=200)
    assert (regression.test_id, regression.first_failing_commit) == ("t::broken", "c6")
    assert regression.last_passing_commit == "c5"
    assert regression.failing_runs == 4
    assert StoredFlakyTest.objects.get(
        project=project, window_runs=100, test_id="t::flaky"
    ).is_flaky
    assert TestAnalysisState.objects.get(project=project).computed_at == NOW


@pytest.mark.django_db
def test_a_fixed_test_drops_its_stored_regression_on_the_next_refresh() -> None:
    project, _ = make_project()
    runs = make_test_history(project, HISTORIES, started_at=T0)
    save_test_analysis(project.pk, fetch_and_compute_test_analysis(project.pk, now=NOW), now=NOW)
    ids = list(StoredFlakyTest.objects.filter(project=project).values_list("pk", flat=True))
    TestResult.objects.filter(run=runs[-1], test_id="t::broken").update(outcome="pass")

    save_test_analysis(project.pk, fetch_and_compute_test_analysis(project.pk, now=NOW), now=NOW)

    assert not StoredTestRegression.objects.filter(project=project).exists()
    # Upserted in place: the flaky rows keep their ids.
    assert sorted(StoredFlakyTest.objects.filter(project=project).values_list("pk", flat=True)) == (
        sorted(ids)
    )


@pytest.mark.django_db
def test_a_burst_of_results_queues_one_refresh_until_it_is_claimed() -> None:
    project, _ = make_project()

    first = mark_test_analysis_pending([project.pk], now=NOW)
    second = mark_test_analysis_pending([project.pk, project.pk], now=NOW)
    claim_test_analysis(project.pk)
    after_claim = mark_test_analysis_pending([project.pk], now=NOW)

    assert (first, second, after_claim) == ([project.pk], [], [project.pk])


@pytest.mark.django_db
def test_the_api_reads_the_stored_regressions_and_falls_back_before_the_first_refresh() -> None:
    project, key = make_project()
    runs = make_test_history(project, HISTORIES, started_at=T0)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    before = api.get("/api/v1/test-regressions/").json()
    refresh_test_analysis_task(project.pk)
    # A change the refresh has not seen yet: the API answers from what was stored.
    TestResult.objects.filter(run=runs[-1], test_id="t::broken").update(outcome="pass")
    stored = api.get("/api/v1/test-regressions/").json()
    filtered = api.get("/api/v1/test-regressions/?tier=unit").json()

    assert [row["test_id"] for row in before["results"]] == ["t::broken"]
    assert [row["test_id"] for row in stored["results"]] == ["t::broken"]
    assert stored["results"][0]["first_failing_commit"] == "c6"
    assert filtered["count"] == 0  # a filter the store does not keep: computed on request


@pytest.mark.django_db
def test_the_regressions_page_says_computing_until_the_analysis_is_stored(
    client: Client, admin_user: Any
) -> None:
    project, _ = make_project(user=admin_user)
    make_test_history(project, HISTORIES, started_at=T0)
    client.force_login(admin_user)

    before = client.get(f"/tests/regressions/?project={project.slug}")
    refresh_test_analysis_task(project.pk)
    after = client.get(f"/tests/regressions/?project={project.slug}")

    assert before.status_code == 200
    assert "Computing…" in before.content.decode()
    assert "t::broken" in before.content.decode()
    assert "Computing…" not in after.content.decode()
    assert "t::broken" in after.content.decode()


def _stored_rows(project_id: int) -> list[Any]:
    return [
        sorted(StoredFlakyTest.objects.filter(project_id=project_id).values_list()),
        sorted(StoredTestRegression.objects.filter(project_id=project_id).values_list()),
        sorted(TestPassRateDay.objects.filter(project_id=project_id).values_list()),
        queries.test_analysis_computed_at(project_id),
    ]
