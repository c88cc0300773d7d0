"""Test runs into the database: a real pytest run's JUnit XML, native records, refusals."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ingest.models import ReceivedRecord, TestResult, TestRun
from tests.sample_suite import SAMPLE_OUTCOMES, SAMPLE_TEST_COUNT, run_sample_suite

pytestmark = pytest.mark.django_db

JUNIT_URL = "/api/v1/test-runs/junit?tier=unit&commit=abc123&branch=main&suite=sample"


@pytest.fixture(scope="module")
def sample_junit(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The JUnit XML of one real pytest run of the sample suite."""
    path = tmp_path_factory.mktemp("junit") / "report.xml"
    run_sample_suite(f"--junitxml={path}")
    return Path(path).read_bytes()


def upload(client: Client, key: str, body: bytes, url: str = JUNIT_URL) -> Any:
    return client.post(
        url, data=body, content_type="application/xml", headers={"Authorization": f"Bearer {key}"}
    )


def test_a_real_pytest_junit_report_is_stored_as_one_run(
    client: Client, project_with_key: tuple[Any, str], sample_junit: bytes
) -> None:
    project, key = project_with_key

    response = upload(client, key, sample_junit)

    assert response.status_code == 200, response.content
    assert response.json()["results"] == SAMPLE_TEST_COUNT
    run = TestRun.objects.get(project=project)
    assert (run.tier, run.commit, run.branch, run.suite, run.source) == (
        "unit",
        "abc123",
        "main",
        "sample",
        "junit",
    )
    assert run.started_at is not None and run.ended_at is not None
    results = {r.name: r for r in TestResult.objects.filter(run=run)}
    assert Counter(r.outcome for r in results.values()) == SAMPLE_OUTCOMES
    failed = results["test_calculator_tool_divides"]
    assert failed.test_id == "check_tools::test_calculator_tool_divides"
    assert "calculator returned the wrong quotient" in failed.error_message
    assert "assert 0.25 == 0.5" in failed.error_trace
    assert results["test_tokenizer_counts_emoji"].outcome == "xfail"
    assert "search index offline" in results["test_search_tool_survives_a_cold_index"].error_message
    assert results["test_red_team_round_ends_with_a_verdict"].session_ids == [
        "sample-scenario-session"
    ]
    assert results["test_planner_splits_the_task_into_steps"].metrics == {
        "tokens": 812.0,
        "cost": 0.0042,
    }


def test_a_retried_upload_stores_nothing_new(
    client: Client, project_with_key: tuple[Any, str], sample_junit: bytes
) -> None:
    _, key = project_with_key
    upload(client, key, sample_junit)

    again = upload(client, key, sample_junit)

    assert again.status_code == 200
    assert again.json()["accepted"] == 0
    assert TestRun.objects.count() == 1
    assert TestResult.objects.count() == SAMPLE_TEST_COUNT


def test_an_upload_costs_the_same_queries_whatever_its_size(
    client: Client,
    project_with_key: tuple[Any, str],
    django_assert_max_num_queries: Any,
) -> None:
    _, key = project_with_key
    cases = "".join(f"<testcase name='t{i}'/>" for i in range(300))
    body = f"<testsuite name='big'>{cases}</testsuite>".encode()

    with django_assert_max_num_queries(12):
        response = upload(client, key, body)

    assert response.json()["results"] == 300


def test_a_report_may_come_as_a_form_file(
    client: Client, project_with_key: tuple[Any, str], sample_junit: bytes, tmp_path: Path
) -> None:
    _, key = project_with_key
    report = tmp_path / "report.xml"
    report.write_bytes(sample_junit)

    with report.open("rb") as file:
        response = client.post(
            JUNIT_URL, {"file": file}, headers={"Authorization": f"Bearer {key}"}
        )

    assert response.status_code == 200, response.content
    assert TestResult.objects.count() == SAMPLE_TEST_COUNT


def test_a_form_upload_over_the_limit_is_a_413_before_the_form_is_read(
    client: Client, project_with_key: tuple[Any, str], settings: Any, tmp_path: Path
) -> None:
    settings.OBSERVATORY_MAX_BATCH_BYTES = 10_000
    # Past the multipart allowance, and past the size Django would spool to a temporary file.
    report = tmp_path / "big.xml"
    report.write_bytes(b"<testsuite>" + b" " * 3_000_000 + b"</testsuite>")
    _, key = project_with_key

    with report.open("rb") as file:
        response = client.post(
            JUNIT_URL, {"file": file}, headers={"Authorization": f"Bearer {key}"}
        )

    assert response.status_code == 413
    assert "OBSERVATORY_MAX_BATCH_BYTES is 10000" in response.json()["error"]
    assert not TestRun.objects.exists()


def test_malformed_xml_is_a_clear_400_and_stores_nothing(
    client: Client, project_with_key: tuple[Any, str], sample_junit: bytes
) -> None:
    _, key = project_with_key
    truncated = sample_junit[: len(sample_junit) // 2]

    response = upload(client, key, truncated)

    assert response.status_code == 400
    assert response.json()["error"].startswith("Body is not well-formed XML (line ")
    assert not TestRun.objects.exists()
    assert not TestResult.objects.exists()
    assert not ReceivedRecord.objects.exists()


def test_a_testcase_without_a_name_refuses_the_whole_report(
    client: Client, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    body = b"<testsuite><testcase name='fine'/><testcase classname='x'/></testsuite>"

    response = upload(client, key, body)

    assert response.status_code == 400
    assert response.json() == {
        "error": "testsuite/testcase[1]@name: a <testcase> needs a name",
        "field": "testsuite/testcase[1]@name",
    }
    assert not TestResult.objects.exists()


def test_an_upload_without_a_key_is_401_and_a_long_parameter_400(
    client: Client, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    body = b"<testsuite><testcase name='a'/></testsuite>"

    assert client.post(JUNIT_URL, data=body, content_type="application/xml").status_code == 401
    long_tier = upload(client, key, body, url=f"/api/v1/test-runs/junit?tier={'x' * 51}")
    assert long_tier.status_code == 400
    assert long_tier.json()["field"] == "tier"


def native(client: Client, key: str, *records: dict[str, Any]) -> Any:
    return client.post(
        "/api/v1/ingest",
        data=json.dumps({"records": list(records)}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def result(record_id: str, test_id: str, outcome: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "test_result",
        "id": record_id,
        "run_id": "run-1",
        "test_id": test_id,
        "outcome": outcome,
        **extra,
    }


def test_results_before_their_run_start_make_an_inferred_run_that_the_start_completes(
    client: Client, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    native(client, key, result("a", "t1", "pass", started_at="2026-11-21T10:00:05Z"))
    assert TestRun.objects.get().is_inferred

    native(
        client,
        key,
        {
            "type": "test_run.start",
            "id": "s",
            "run_id": "run-1",
            "tier": "chaos",
            "commit": "abc",
            "started_at": "2026-11-21T10:00:00Z",
        },
        {"type": "test_run.end", "id": "e", "run_id": "run-1", "ended_at": "2026-11-21T10:01:00Z"},
    )

    run = TestRun.objects.get()
    assert (run.is_inferred, run.tier, run.commit) == (False, "chaos", "abc")
    assert run.started_at is not None
    assert run.ended_at is not None
    assert run.started_at.isoformat() == "2026-11-21T10:00:00+00:00"
    assert run.ended_at.isoformat() == "2026-11-21T10:01:00+00:00"


def test_a_later_result_for_the_same_test_replaces_it_and_a_retry_is_a_duplicate(
    client: Client, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    native(client, key, result("a", "t1", "fail", error_message="boom"))

    retried = native(client, key, result("a", "t1", "fail", error_message="boom"))
    rerun = native(client, key, result("b", "t1", "pass", session_ids=["s-9"]))

    assert retried.json()["duplicates"] == 1
    assert rerun.json()["accepted"] == 1
    stored = TestResult.objects.get()
    assert (stored.outcome, stored.error_message, stored.session_ids) == ("pass", "", ["s-9"])
