"""The test pages with the Django client: heatmap, runs, run and result detail, flaky tests,
regressions, pass-rate trends and coverage."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ingest.models import Span, TestResult
from tests.builders import make_project, make_session, make_test_history, make_user

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"
HISTORIES = {
    "tests/test_tools.py::test_search": "PPPPPPPPPP",
    "tests/test_tools.py::test_flaky_judge": "PFPPFPPFPP",
    "tests/test_agents.py::test_planner": "PPPPPPFFFF",
    f"tests/test_xss.py::test_{SCRIPT}": "PPPPPPPPPP",
}


@pytest.fixture
def setup(client: Client) -> dict[str, Any]:
    user = make_user()
    project, _ = make_project(user=user)
    start = timezone.now() - timedelta(hours=12)
    runs = make_test_history(
        project,
        HISTORIES,
        started_at=start,
        sessions={"tests/test_agents.py::test_planner": ["planner-session", "lost-session"]},
    )
    client.force_login(user)
    return {"project": project, "runs": runs, "user": user}


def chart_data(html: str, element_id: str) -> Any:
    match = re.search(rf'<script id="{element_id}" type="application/json">(.*?)</script>', html)
    assert match, f"no {element_id} script"
    return json.loads(match.group(1))


def test_the_heatmap_draws_tests_by_runs_with_failing_tests_on_top(
    client: Client, setup: dict[str, Any], django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(12):
        response = client.get("/tests/")

    html = response.content.decode()
    assert response.status_code == 200
    figure = chart_data(html, "chart-heatmap-0")
    trace = figure["data"][0]
    assert trace["y"][:2] == [
        "tests/test_agents.py::test_planner",
        "tests/test_tools.py::test_flaky_judge",
    ]
    assert len(trace["x"]) == 10
    assert trace["text"][0][-1] == "fail"
    assert (
        trace["customdata"][0][-1]
        == TestResult.objects.get(
            test_id="tests/test_agents.py::test_planner", run=setup["runs"][-1]
        ).pk
    )
    assert SCRIPT not in html
    assert "tests/test_xss.py::test_&lt;script&gt;alert(1)&lt;/script&gt;" in trace["y"]


def test_the_heatmap_filters_by_tier(client: Client, setup: dict[str, Any]) -> None:
    response = client.get("/tests/?tier=chaos")

    assert response.status_code == 200
    assert "No test results yet" in response.content.decode()


def test_a_result_panel_shows_the_error_trace_history_and_linked_sessions(
    client: Client, setup: dict[str, Any]
) -> None:
    session = make_session(setup["project"], external_id="planner-session")
    result = TestResult.objects.get(
        test_id="tests/test_agents.py::test_planner", run=setup["runs"][-1]
    )

    panel = client.get(f"/tests/results/{result.pk}/", headers={"HX-Request": "true"})

    html = panel.content.decode()
    assert "<html" not in html
    assert "AssertionError: boom" in html
    assert "Traceback: boom" in html
    assert f'href="/sessions/{session.pk}/"' in html
    assert 'lost-session</span> <span class="muted">(not received)' in html
    assert html.count('class="cell outcome-') == 10
    page = client.get(f"/tests/results/{result.pk}/")
    assert "<html" in page.content.decode()


def test_another_projects_result_and_run_are_not_found(
    client: Client, setup: dict[str, Any]
) -> None:
    other, _ = make_project(name="Other")
    run = make_test_history(other, {"t": "F"})[0]
    result = TestResult.objects.get(run=run)

    assert client.get(f"/tests/results/{result.pk}/").status_code == 404
    assert client.get(f"/tests/runs/{run.pk}/").status_code == 404


def test_runs_list_and_run_detail_count_outcomes(client: Client, setup: dict[str, Any]) -> None:
    latest = setup["runs"][-1]

    listing = client.get("/tests/runs/").content.decode()
    detail = client.get(f"/tests/runs/{latest.pk}/").content.decode()

    assert listing.count('class="row-title mono"') == 10
    assert "/api/v1/test-runs/?" in listing and "format=csv" in listing
    assert "tests/test_agents.py::test_planner" in detail
    assert detail.index("outcome-fail") < detail.index("outcome-pass")
    assert SCRIPT not in detail


def test_flaky_and_regression_pages_find_the_flaky_and_the_broken_test(
    client: Client, setup: dict[str, Any]
) -> None:
    flaky = client.get("/tests/flaky/").content.decode()
    regressions = client.get("/tests/regressions/").content.decode()

    assert "test_flaky_judge" in flaky.split("Changed outcome")[0]
    assert "test_planner" not in flaky.split("Changed outcome")[0]
    assert "test_planner" in regressions
    assert ">c6</a>" in regressions  # first failing commit
    assert ">c5</a>" in regressions  # last passing commit
    assert "test_flaky_judge" not in regressions


def test_trends_page_charts_the_pass_rate_per_tier(client: Client, setup: dict[str, Any]) -> None:
    html = client.get("/tests/trends/").content.decode()

    figure = chart_data(html, "chart-pass-rate")
    assert [trace["name"] for trace in figure["data"]] == ["unit"]
    assert chart_data(html, "chart-run-duration")["data"]


def test_coverage_lists_the_tools_production_uses_and_no_test_reaches(
    client: Client, setup: dict[str, Any]
) -> None:
    project = setup["project"]
    tested = make_session(project, external_id="planner-session", spans=3, agents=("planner",))
    production = make_session(
        project, spans=4, agents=("planner", "judge"), started_at=timezone.now()
    )
    Span.objects.filter(session=production, kind="tool").update(name="sql_query")
    Span.objects.filter(session=tested, kind="tool").update(name="web_search")

    html = client.get("/tests/coverage/").content.decode()

    rows = re.findall(r'<tr class="(uncovered)?"><td>(\w+)</td><td class="mono">([^<]+)</td>', html)
    uncovered = [(kind, name) for flag, kind, name in rows if flag]
    assert ("agent", "judge") in uncovered
    assert ("tool", "sql_query") in uncovered
    assert ("agent", "planner") not in uncovered
    assert "1 / 2" in html  # agents tested / used in production


def test_the_nav_has_a_tests_entry(client: Client, setup: dict[str, Any]) -> None:
    html = client.get("/tests/flaky/").content.decode()

    assert '<a href="/tests/" aria-current="page">Tests</a>' in html


def test_each_tier_gets_its_own_heatmap_with_its_own_runs(
    client: Client, setup: dict[str, Any]
) -> None:
    make_test_history(setup["project"], {"chaos::test_kill": "PE"}, tier="chaos")

    html = client.get("/tests/").content.decode()

    unit, chaos = chart_data(html, "chart-heatmap-0"), chart_data(html, "chart-heatmap-1")
    assert len(unit["data"][0]["x"]) == 10
    assert chaos["data"][0]["y"] == ["chaos::test_kill"]
    assert len(chaos["data"][0]["x"]) == 2
    assert '<option value="chaos">chaos</option>' in html
