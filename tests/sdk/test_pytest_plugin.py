"""The pytest plugin in sdk/: the sample suite run by pytest in a subprocess, reporting to the
live server through the client."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest

from ingest.models import Score, Session, TestResult, TestRun
from tests.sample_suite import SAMPLE_OUTCOMES, SAMPLE_TEST_COUNT, run_sample_suite


def test_the_plugin_is_installed_with_the_client_and_off_by_default() -> None:
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("observatory") == "observatory_sdk.pytest_plugin"

    output = run_sample_suite(env={"OBSERVATORY_API_KEY": "obs_unused"})

    assert "Observatory:" not in output
    assert "PytestUnknownMarkWarning" not in output


def test_enabled_without_an_api_key_it_stops_with_a_usage_error() -> None:
    output = run_sample_suite(env={"OBSERVATORY_TEST_REPORT": "1"}, status=4)

    assert "Observatory reporting needs an API key" in output


def test_a_run_of_the_sample_suite_is_reported_with_tiers_outcomes_and_sessions(
    live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    project, key = project_with_key
    env = {
        "OBSERVATORY_URL": live_server.url,
        "OBSERVATORY_API_KEY": key,
        "OBSERVATORY_COMMIT": "abc123",
        "OBSERVATORY_BRANCH": "main",
        "SAMPLE_OBSERVATORY_URL": live_server.url,
        "SAMPLE_OBSERVATORY_API_KEY": key,
    }

    output = run_sample_suite("--observatory", env=env)

    assert f"Observatory: {SAMPLE_TEST_COUNT} results of run" in output
    assert "NOT all delivered" not in output
    run = TestRun.objects.get(project=project)
    assert (run.source, run.commit, run.branch, run.suite) == (
        "pytest",
        "abc123",
        "main",
        "sample_suite",
    )
    assert run.ended_at is not None
    assert run.metadata["exit_status"] == 1
    results = {r.name: r for r in TestResult.objects.filter(run=run)}
    assert len(results) == SAMPLE_TEST_COUNT
    assert sorted(r.outcome for r in results.values()) == sorted(
        outcome for outcome, count in SAMPLE_OUTCOMES.items() for _ in range(count)
    )
    assert {r.name: r.tier for r in results.values()} == {
        "test_search_tool_finds_the_president": "unit",
        "test_calculator_tool_divides": "unit",
        "test_web_fetch_tool_follows_redirects": "unit",
        "test_tokenizer_counts_emoji": "unit",
        "test_search_tool_survives_a_cold_index": "unit",
        "test_planner_splits_the_task_into_steps": "integration",
        "test_red_team_round_ends_with_a_verdict": "scenario",
    }
    failed = results["test_calculator_tool_divides"]
    assert failed.test_id == "check_tools.py::test_calculator_tool_divides"
    assert failed.outcome == "fail"
    assert "calculator returned the wrong quotient" in failed.error_message
    assert "assert 0.25 == 0.5" in failed.error_trace
    assert results["test_search_tool_survives_a_cold_index"].outcome == "error"
    assert "search index offline" in results["test_search_tool_survives_a_cold_index"].error_message
    assert results["test_web_fetch_tool_follows_redirects"].error_message == "needs network"
    assert results["test_tokenizer_counts_emoji"].error_message == "tokenizer miscounts emoji"
    assert results["test_planner_splits_the_task_into_steps"].metrics == {
        "tokens": 812.0,
        "cost": 0.0042,
    }
    scenario = results["test_red_team_round_ends_with_a_verdict"]
    assert scenario.session_ids == ["sample-scenario-session"]
    assert Session.objects.filter(project=project, external_id="sample-scenario-session").exists()
    assert [(s["name"], s["value"]) for s in scenario.scores] == [
        ("verdict_correct", 1.0),
        ("judge", 0.75),
    ]
    assert scenario.metrics == {}  # a score.* property is a score, not a metric
    on_session = Score.objects.filter(session__external_id="sample-scenario-session")
    assert sorted((s.name, s.shown_value, s.source) for s in on_session) == [
        ("judge", "0.75", "eval"),
        ("verdict_correct", "true", "eval"),
    ]


@pytest.mark.parametrize("value", ["1", "true"])
def test_the_environment_variable_turns_it_on(
    value: str, live_server: Any, project_with_key: tuple[Any, str]
) -> None:
    _, key = project_with_key
    env = {"OBSERVATORY_TEST_REPORT": value, "OBSERVATORY_URL": live_server.url}
    env["OBSERVATORY_API_KEY"] = key

    run_sample_suite("-k", "tools", "--observatory-tier", "unit", env=env)

    assert TestRun.objects.get().tier == "unit"
    assert TestResult.objects.count() == 5
