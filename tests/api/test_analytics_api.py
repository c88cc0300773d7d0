"""The analytics endpoints: stored lists (JSON and CSV), the anomaly status action, computed
tables (trend series, report builder, cohorts, forecasts) and project isolation."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from analytics.models import Anomaly
from analytics.refresh import detect_session_failures, refresh_project, regroup_incidents
from analytics.reporting import make_report
from ingest.models import Agent, Span
from tests.builders import (
    make_alert_rule,
    make_anomaly,
    make_project,
    make_session,
    make_span,
    make_user,
)
from tests.responses import streamed

pytestmark = pytest.mark.django_db


@pytest.fixture
def project_and_key() -> tuple[Any, str]:
    """A project with an hour-old session (one failing tool call) and its rollups."""
    project, key = make_project(name="Api")
    now = timezone.now()
    session = make_session(project, started_at=now - timedelta(hours=1), spans=4, llm_spans=2)
    make_span(
        session,
        name="web_fetch",
        status=Span.Status.ERROR,
        error_type="TimeoutError",
        error_message="=cmd timed out after 5s",
    )
    refresh_project(project.pk, since=now - timedelta(days=1), now=now)
    return project, key


@pytest.fixture
def api(project_and_key: tuple[Any, str], key_client: Callable[[str], APIClient]) -> APIClient:
    return key_client(project_and_key[1])


def rows(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.content
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def csv_of(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200, response.content
    text = streamed(response).decode() if response.streaming else response.content.decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_stored_rollups_are_listed_and_filtered(api: APIClient) -> None:
    found = rows(api.get("/api/v1/trends/?granularity=day&kind=llm"))

    assert [(r["granularity"], r["kind"], r["model"], r["count"]) for r in found] == [
        ("day", "llm", "gpt-4o", 2)
    ]
    assert "latency_histogram" not in found[0]


def test_rollups_fold_the_agent_instances_of_sessions_by_their_name(
    project_and_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    # agentops and OTLP give each session's agent its own id: one row by name, not one a session.
    project, key = project_and_key
    now = timezone.now()
    other = make_session(project, started_at=now - timedelta(hours=1), spans=3, llm_spans=2)
    Agent.objects.filter(session=other).update(external_id="agent-of-run-2")
    Span.objects.filter(session=other).update(agent_external_id="agent-of-run-2")
    refresh_project(project.pk, since=now - timedelta(days=1), now=now)

    found = rows(key_client(key).get("/api/v1/trends/?granularity=day&kind=llm"))

    assert [(r["agent"], r["count"]) for r in found] == [("planner", 4)]
    assert rows(key_client(key).get("/api/v1/trends/?granularity=day&kind=llm&agent=planner"))


def test_a_trend_series_comes_as_json_and_as_the_same_csv(api: APIClient) -> None:
    url = "/api/v1/trends/series/?group=model&kind=llm&days=2"

    as_json = rows(api.get(url))
    as_csv = csv_of(api.get(url + "&format=csv"))

    assert [r["group"] for r in as_json] == ["gpt-4o"]
    assert [r["group"] for r in as_csv] == ["gpt-4o"]
    assert as_csv[0]["count"] == "2"
    assert list(as_csv[0])[:3] == ["bucket", "group", "count"]


def test_a_bad_trend_parameter_is_a_400_naming_it(api: APIClient) -> None:
    response = api.get("/api/v1/trends/series/?group=planet")

    assert response.status_code == 400
    assert "group" in response.json()["error"] or "group" in str(response.json())


def test_anomalies_are_listed_and_acknowledged(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    anomaly = make_anomaly(project_and_key[0])

    listed = rows(api.get("/api/v1/anomalies/?status=open"))
    changed = api.post(
        f"/api/v1/anomalies/{anomaly.pk}/status/", {"status": "acknowledged"}, format="json"
    )

    assert [r["explanation"] for r in listed] == [anomaly.explanation]
    assert changed.status_code == 200
    assert changed.json()["status"] == "acknowledged"
    assert Anomaly.objects.get().status == "acknowledged"
    assert rows(api.get("/api/v1/anomalies/?status=open")) == []


def test_incidents_are_listed_with_their_flags_filtered_and_as_the_same_csv(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    project = project_and_key[0]
    tool = make_anomaly(project)
    agent = make_anomaly(project, subject_type="agent", subject="researcher")
    regroup_incidents(project.pk, since=tool.window_start, now=tool.window_end)

    [incident] = rows(api.get("/api/v1/incidents/?status=open&top_dimension=model=gpt-4o"))
    table = csv_of(api.get("/api/v1/incidents/?format=csv"))

    assert incident["anomaly_ids"] == sorted([tool.pk, agent.pk])
    assert (incident["flag_count"], incident["top_dimension"]) == (2, "model=gpt-4o")
    assert incident["explanation"].startswith(tool.explanation)
    assert [r["explanation"] for r in table] == [incident["explanation"]]
    assert rows(api.get("/api/v1/incidents/?status=closed")) == []


def test_an_unknown_anomaly_status_is_refused(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    anomaly = make_anomaly(project_and_key[0])

    response = api.post(
        f"/api/v1/anomalies/{anomaly.pk}/status/", {"status": "gone"}, format="json"
    )

    assert response.status_code == 400


def test_error_clusters_are_listed_and_their_csv_is_formula_safe(api: APIClient) -> None:
    found = rows(api.get("/api/v1/error-clusters/"))
    exported = csv_of(api.get("/api/v1/error-clusters/?format=csv"))

    assert [(r["error_type"], r["pattern"], r["count"]) for r in found] == [
        ("TimeoutError", "=cmd timed out after <n>s", 1)
    ]
    assert exported[0]["pattern"] == "'=cmd timed out after <n>s"


def test_session_flags_are_listed_with_the_session_page(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    session = make_session(project_and_key[0], spans=1)
    for _ in range(5):
        make_span(session, name="search", params={"q": "same"})
    detect_session_failures([session.pk])

    found = rows(api.get("/api/v1/session-flags/?detector=tool_loop"))

    assert [(r["session_id"], r["detector"]) for r in found] == [(session.external_id, "tool_loop")]
    assert found[0]["session_url"].endswith(f"/sessions/{session.pk}/")


def test_alert_rules_never_show_their_secret(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    make_alert_rule(project_and_key[0], secret="do-not-leak")

    found = rows(api.get("/api/v1/alert-rules/"))
    exported = api.get("/api/v1/alert-rules/?format=csv")

    assert found[0]["name"] == "Errors"
    assert "secret" not in found[0]
    assert b"do-not-leak" not in streamed(exported)


def test_the_report_builder_groups_the_chosen_metrics(api: APIClient) -> None:
    found = rows(api.get("/api/v1/report-builder/?grouping=model&metrics=count,cost&days=2"))
    exported = csv_of(
        api.get("/api/v1/report-builder/?grouping=kind&metrics=count,error_count&format=csv")
    )

    assert [(r["model"], r["count"]) for r in found] == [("", 3), ("gpt-4o", 2)]
    assert set(found[0]) == {"model", "count", "cost"}
    assert {r["kind"]: r["error_count"] for r in exported} == {
        "action": "0",
        "llm": "0",
        "tool": "1",
    }


def test_an_unknown_report_metric_is_a_400(api: APIClient) -> None:
    response = api.get("/api/v1/report-builder/?metrics=count,vibes")

    assert response.status_code == 400


def test_stored_reports_are_listed_with_their_csv(
    api: APIClient, project_and_key: tuple[Any, str]
) -> None:
    report = make_report(project_and_key[0].pk, "weekly", now=timezone.now())

    found = rows(api.get("/api/v1/reports/"))
    exported = api.get(f"/api/v1/reports/{report.pk}/csv/")

    assert [r["period"] for r in found] == ["weekly"]
    assert found[0]["csv_url"].endswith(f"/api/v1/reports/{report.pk}/csv/")
    assert exported["Content-Type"].startswith("text/csv")


def test_cohorts_and_forecasts_answer_for_the_keys_project(api: APIClient) -> None:
    cohorts = rows(api.get("/api/v1/cohorts/?split=tag&a=x&b=y"))
    forecast = rows(api.get("/api/v1/forecasts/?metric=sessions&horizon=7"))

    assert [r["metric"] for r in cohorts][:2] == ["cost", "duration_ms"]
    assert cohorts[0]["a_count"] == 0
    assert [r["kind"] for r in forecast][-7:] == ["forecast"] * 7


def test_a_user_with_two_projects_must_name_one_for_a_computed_table(
    user_client: Callable[[Any], APIClient],
) -> None:
    user = make_user()
    make_project(name="One", user=user)
    make_project(name="Two", user=user)
    client = user_client(user)

    assert client.get("/api/v1/forecasts/").status_code == 400
    assert client.get("/api/v1/forecasts/?project=two").status_code == 200
    assert client.get("/api/v1/forecasts/?project=strangers").status_code == 400


def test_another_projects_analytics_are_invisible(
    project_and_key: tuple[Any, str], key_client: Callable[[str], APIClient]
) -> None:
    other, other_key = make_project(name="Other")
    make_anomaly(project_and_key[0])
    client = key_client(other_key)

    assert rows(client.get("/api/v1/anomalies/")) == []
    assert rows(client.get("/api/v1/trends/")) == []
    assert rows(client.get("/api/v1/error-clusters/")) == []
    anomaly = Anomaly.objects.get()
    response = client.post(f"/api/v1/anomalies/{anomaly.pk}/status/", {"status": "resolved"})
    assert response.status_code == 404
    assert other.pk != project_and_key[0].pk
