"""The test analysis in a real Celery worker (Redis broker, PostgreSQL): two JUnit uploads
through the live server, the second breaking a test, leave a stored regression that the API
serves."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from analytics.models import StoredTestRegression, TestAnalysisState
from ingest.models import ApiKey, Project
from tests.waiting import DEADLINE, wait_until

pytestmark = pytest.mark.worker

PASSING = b"""<testsuite name="agents" timestamp="2026-11-20T09:00:00+00:00">
  <testcase classname="tools.search" name="test_finds" time="0.5"/>
  <testcase classname="tools.calc" name="test_divides" time="0.2"/>
</testsuite>"""
FAILING = b"""<testsuite name="agents" timestamp="2026-11-20T10:00:00+00:00">
  <testcase classname="tools.search" name="test_finds" time="0.5"/>
  <testcase classname="tools.calc" name="test_divides" time="0.2">
    <failure message="wrong quotient">assert 0.25 == 0.5</failure>
  </testcase>
</testsuite>"""


@pytest.fixture(scope="module", autouse=True)
def _short_debounce() -> Iterator[None]:
    """The worker of this module refreshes the analysis one second after the first upload
    (autouse module fixtures come before the module's worker fixture)."""
    old = os.environ.get("OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS")
    os.environ["OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS"] = "1"
    yield
    if old is None:
        os.environ.pop("OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS")
    else:
        os.environ["OBSERVATORY_TEST_ANALYSIS_DEBOUNCE_SECONDS"] = old


def _call(url: str, key: str, body: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {key}"})
    if body is not None:
        request.add_header("Content-Type", "application/xml")
    with urllib.request.urlopen(request, timeout=DEADLINE) as response:
        return json.loads(response.read())


def test_an_uploaded_regression_is_stored_by_the_worker_and_served_by_the_api(
    live_server: Any, celery_worker: Any
) -> None:
    project = Project.objects.create(name="Suite", slug="suite")
    _, key = ApiKey.generate(project)
    upload = f"{live_server.url}/api/v1/test-runs/junit?tier=unit&branch=main&suite=agents"

    _call(f"{upload}&commit=good1", key, PASSING)
    _call(f"{upload}&commit=bad2", key, FAILING)

    stored = wait_until(
        lambda: StoredTestRegression.objects.filter(project=project, window_runs=200).first(),
        what="the stored regression of the failing run",
    )
    assert (stored.test_id, stored.first_failing_commit, stored.last_passing_commit) == (
        "tools.calc::test_divides",
        "bad2",
        "good1",
    )
    state = TestAnalysisState.objects.get(project=project)
    assert state.computed_at is not None and not state.is_scheduled
    answer = _call(f"{live_server.url}/api/v1/test-regressions/", key)
    assert [row["first_failing_commit"] for row in answer["results"]] == ["bad2"]
