"""The stored test analysis: pass-rate and duration days (pure), the store's upsert (idempotent,
stale rows dropped), the debounce mark, and the API and pages (regressions, trends, coverage)
reading what the refresh stored."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from analytics import queries
from analytics.models import (
    StoredFlakyTest,
    StoredTestRegression,
    TestAnalysisState,
    TestCoverageItem,
    TestDurationDay,
    TestPassRateDay,
    TestTierReliability,
)
from analytics.refresh import fetch_and_compute_test_analysis
from analytics.store import (
    claim_test_analysis,
    mark_test_analysis_pending,
    save_test_analysis,
)
from analytics.tasks import refresh_test_analysis_task
from analytics.testanalysis import duration_days, pass_rate_days
from ingest.models import Span, TestResult
from tests.builders import make_project, make_session, make_test_history

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


def test_duration_days_take_the_median_run_and_test_per_day_and_tier() -> None:
    results = pd.DataFrame(
        {
            "result_pk": [1, 2, 3, 4, 5],
            "run_pk": [1, 1, 2, 2, 3],
            "run_started_at": pd.to_datetime(["2026-11-20 09:00"] * 4 + ["2026-11-21 01:00"]),
            "tier": ["unit", "unit", "unit", "unit", None],
            "test_id": ["x", "y", "x", "y", "x"],
            "outcome": "pass",
            "duration_ms": [10.0, 30.0, 20.0, 40.0, None],
        }
    )

    days = duration_days(results)

    # Run 1 took 40 ms (median test 20), run 2 60 ms (median 30); run 3 has no duration.
    assert days.to_dict("records") == [
        {
            "day": NOW.date() - timedelta(days=1),
            "tier": "unit",
            "run_ms": 50.0,
            "test_ms": 25.0,
            "runs": 2,
        },
    ]


@pytest.mark.django_db
def test_storing_the_same_analysis_twice_leaves_the_same_rows() -> None:
    project, _ = make_project()
    make_test_history(project, HISTORIES, started_at=T0, sessions={"t::stable": ["tested-session"]})
    make_session(project, external_id="tested-session", agents=("planner",), started_at=T0)
    make_session(project, agents=("planner", "judge"), started_at=NOW - timedelta(hours=1))
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
    day = TestDurationDay.objects.get(project=project, day=T0.date())
    assert (day.tier, day.runs, day.test_ms) == ("unit", 10, 100.0)
    unit = TestTierReliability.objects.get(project=project, days=7, tier="unit")
    assert unit.tests == 3
    judge = TestCoverageItem.objects.get(project=project, days=7, kind="agent", name="judge")
    planner = TestCoverageItem.objects.get(project=project, days=7, kind="agent", name="planner")
    assert (judge.is_covered, planner.is_covered) == (False, True)
    assert TestAnalysisState.objects.get(project=project).tested_session_counts["7"] == 1


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


@pytest.mark.django_db
def test_the_trends_and_coverage_pages_read_the_stored_durations_and_coverage(
    client: Client, admin_user: Any
) -> None:
    """Durations and production usage change after the refresh: the unfiltered pages keep
    showing what was stored, a suite filter computes on request."""
    project, _ = make_project(user=admin_user)
    start = timezone.now() - timedelta(hours=12)
    make_test_history(project, HISTORIES, started_at=start, sessions={"t::stable": ["tested"]})
    make_session(project, external_id="tested", agents=("planner",), started_at=start)
    production = make_session(project, spans=4, agents=("planner",), started_at=start)
    Span.objects.filter(session=production, kind="tool").update(name="sql_query")
    client.force_login(admin_user)
    trends, coverage = f"/tests/trends/?project={project.slug}", "/tests/coverage/"

    before = client.get(coverage).content.decode()
    refresh_test_analysis_task(project.pk)
    TestResult.objects.filter(project=project).update(duration_ms=9000.0)
    Span.objects.filter(session=production, kind="tool").update(name="shell")
    stored_trends = client.get(trends).content.decode()
    stored_coverage = client.get(coverage).content.decode()
    computed_coverage = client.get(f"{coverage}?suite=agents").content.decode()

    assert "Computing…" in before and "sql_query" in before
    assert "Computing…" not in stored_trends and "Analysis as of" in stored_trends
    assert _chart(stored_trends, "chart-run-duration")["data"][0]["y"][0] < 9000
    assert "sql_query" in stored_coverage and "shell" not in stored_coverage
    assert "shell" in computed_coverage and "sql_query" not in computed_coverage


def _chart(html: str, element_id: str) -> Any:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, f"no {element_id} script"
    return json.loads(match.group(1))


def _stored_rows(project_id: int) -> list[Any]:
    return [
        sorted(model.objects.filter(project_id=project_id).values_list())
        for model in (
            StoredFlakyTest,
            StoredTestRegression,
            TestPassRateDay,
            TestDurationDay,
            TestTierReliability,
            TestCoverageItem,
            TestAnalysisState,
        )
    ] + [queries.test_analysis_computed_at(project_id)]
