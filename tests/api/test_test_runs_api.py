"""/api/v1/test-runs/, test-results/, flaky-tests/ and test-regressions/: JSON and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from tests.builders import make_project, make_test_history, make_user
from tests.responses import streamed

pytestmark = pytest.mark.django_db

HISTORIES = {
    "t::stable": "PPPPPPPPPP",
    "t::flaky": "PFPPFPPFPP",
    "t::broken": "PPPPPPFFFF",
}


@pytest.fixture
def project_key() -> tuple[Any, str]:
    project, key = make_project()
    make_test_history(project, HISTORIES, tier="integration", suite="arena")
    other, _ = make_project(name="Other")
    make_test_history(other, {"t::other": "FFFF"})
    return project, key


def rows_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    text = streamed(response).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_runs_list_their_result_counts_in_json_and_csv(
    project_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    _, key = project_key
    api = key_client(key)

    page = api.get("/api/v1/test-runs/").json()
    exported = rows_of(api.get("/api/v1/test-runs/?format=csv"))

    assert len(page["results"]) == 10
    latest = page["results"][0]
    assert (latest["tier"], latest["suite"], latest["commit"]) == ("integration", "arena", "c9")
    assert (latest["result_count"], latest["pass_count"], latest["fail_count"]) == (3, 2, 1)
    assert latest["url"].startswith("http://testserver/tests/runs/")
    assert [row["id"] for row in exported] == [row["id"] for row in page["results"]]
    assert exported[0]["fail_count"] == "1"


def test_results_filter_by_outcome_tier_and_test(
    project_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    _, key = project_key
    api = key_client(key)

    failed = api.get("/api/v1/test-results/?outcome=fail&tier=integration").json()["results"]
    one = api.get("/api/v1/test-results/?test_id=t::broken&commit=c9").json()["results"]
    other_tier = api.get("/api/v1/test-results/?tier=unit").json()["results"]

    assert len(failed) == 7
    assert {row["test_id"] for row in failed} == {"t::flaky", "t::broken"}
    assert one[0]["outcome"] == "fail"
    assert one[0]["error_message"] == "AssertionError: boom"
    assert "error_trace" not in one[0]
    assert other_tier == []


def test_flaky_tests_and_regressions_are_computed_over_the_window(
    project_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    _, key = project_key
    api = key_client(key)

    flaky = api.get("/api/v1/flaky-tests/").json()
    every = api.get("/api/v1/flaky-tests/?all=true").json()
    regressions = api.get("/api/v1/test-regressions/").json()
    narrow = api.get("/api/v1/test-regressions/?runs=3").json()

    assert [row["test_id"] for row in flaky["results"]] == ["t::flaky"]
    assert flaky["results"][0]["reliability"] == pytest.approx(0.7)
    assert every["count"] == 3
    assert regressions["count"] == 1
    broken = regressions["results"][0]
    assert (broken["test_id"], broken["first_failing_commit"], broken["last_passing_commit"]) == (
        "t::broken",
        "c6",
        "c5",
    )
    assert "/tests/results/" in broken["first_failing_result_url"]
    assert narrow["count"] == 0  # the last 3 runs hold no pass of t::broken


def test_computed_lists_export_csv_with_their_columns_even_when_empty(
    project_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    _, key = project_key
    api = key_client(key)

    flaky = rows_of(api.get("/api/v1/flaky-tests/?format=csv"))
    empty = api.get("/api/v1/test-duration-regressions/?format=csv")
    header = streamed(empty).decode().splitlines()

    assert [row["test_id"] for row in flaky] == ["t::flaky"]
    assert header == [
        "test_id,name,tier,suite,baseline_ms,recent_ms,ratio,slower_since_commit,slower_since_at"
    ]


def test_a_user_names_the_project_and_sees_only_their_own(
    project_key: tuple[Any, str], user_client: Callable[[Any], APIClient]
) -> None:
    project, _ = project_key
    user = make_user()
    project.membership_set.create(user=user)
    api = user_client(user)

    missing = api.get("/api/v1/flaky-tests/")
    foreign = api.get("/api/v1/flaky-tests/?project=other")
    own = api.get(f"/api/v1/flaky-tests/?project={project.slug}")
    results = api.get("/api/v1/test-results/").json()["results"]

    assert missing.status_code == 400
    assert foreign.status_code == 400
    assert own.json()["count"] == 1
    assert "t::other" not in {row["test_id"] for row in results}
    assert api.get("/api/v1/flaky-tests/?runs=0&project=acme").status_code == 400
