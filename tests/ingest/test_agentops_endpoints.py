"""The agentops SDK's real captured requests replayed against our endpoints (golden tests).

tests/fixtures/agentops holds every request the unmodified SDK made (0.4.21 and legacy 0.3.26);
each test replays them in order through the Django test client and checks what a user would then
see through the REST API.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from ingest.models import IngestRejection, Project, Session, Span, TranscriptLine

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "agentops"
TRACE_SUCCESS = "745e084a12d16fd275ac148b2c76b5b6"


def captured(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).open()]


def raw_body(folder: str, request: dict[str, Any]) -> bytes:
    return (FIXTURES / folder / request["raw_file"]).read_bytes()


def token_for(client: Client, key: str) -> str:
    response = client.post("/v3/auth/token", {"api_key": key}, content_type="application/json")
    assert response.status_code == 200
    answer = response.json()
    assert answer["project_prem_status"] == "pro" and answer["project_id"]
    return str(answer["token"])


def replay(client: Client, key: str, scenario: str = "main") -> list[Any]:
    """Send every observatory-bound request of a 0.4 capture, as the SDK sent it."""
    token = token_for(client, key)
    answers = []
    for request in captured(f"capture-{scenario}.jsonl"):
        if request["method"] != "POST" or request["path"] in ("/v3/auth/token",):
            continue
        if request["path"].startswith("/fake-openai"):
            continue
        headers = {"Authorization": f"Bearer {token}"}
        if "Trace-Id" in request["headers"]:
            headers["Trace-Id"] = request["headers"]["Trace-Id"]
        content_type = request["headers"].get("Content-Type", "application/json")
        body = raw_body(f"raw-{scenario}", request)
        answers.append(
            client.post(request["path"], body, content_type=content_type, headers=headers)
        )
    return answers


def api(client: Client, key: str, path: str) -> Any:
    response = client.get(path, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.content
    return response.json()


def test_the_token_exchange_answers_what_the_sdk_reads(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    project, key = project_with_key
    answer = client.post("/v3/auth/token", {"api_key": key}, content_type="application/json")
    assert answer.json()["project_id"] == str(project.pk)
    unknown = client.post("/v3/auth/token", {"api_key": "nope"}, content_type="application/json")
    assert unknown.status_code == 403
    missing = client.post("/v3/auth/token", {}, content_type="application/json")
    assert missing.status_code == 400 and missing.json()["field"] == "api_key"


def test_the_captured_main_run_shows_every_session_with_its_end_state(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    answers = replay(client, key)
    assert {a.status_code for a in answers} == {200}
    states = dict(Session.objects.values_list("name", "end_state"))
    assert states["probe-success"] == "success"
    assert states["probe-error"] == "fail"
    assert states["session"] == "fail"
    assert states["decorated_trace"] == "success"
    # An enum end state never reaches the wire, nor does a `with` block's: Indeterminate.
    assert states["probe-enum-state"] == "indeterminate"
    assert states["probe-with-block"] == "indeterminate"
    assert states["decorated_trace_fail"] == "indeterminate"
    host_env = Session.objects.get(name="session").metadata["host_env"]
    assert "host.system" in host_env or "host" in json.dumps(host_env)


def test_llm_calls_come_with_model_tokens_and_an_estimated_cost(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    llm = Span.objects.filter(session__external_id=TRACE_SUCCESS, kind="llm")
    assert llm.count() == 3
    assert {s.model for s in llm} == {"gpt-4o-mini-2024-07-18"}
    assert sorted((s.prompt_tokens, s.completion_tokens) for s in llm) == [
        (9, 3),
        (23, 11),
        (23, 11),
    ]
    assert all(s.cost and s.is_cost_estimated for s in llm)
    # The model's tool-call request is attached to its LLM call, not a separate event.
    assert not Span.objects.filter(name__startswith="tool_call.").exists()
    completions = [s.payload.completion for s in llm.select_related("payload")]
    assert any("get_weather" in json.dumps(c) for c in completions)


def test_tools_keep_params_returns_and_their_cost(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    tool = (
        Span.objects.select_related("payload")
        .filter(session__external_id=TRACE_SUCCESS, kind="tool", name="get_weather")
        .first()
    )
    assert tool is not None
    assert tool.cost == pytest.approx(0.01)
    assert tool.payload.params and tool.payload.returns


def test_a_failing_tool_gives_one_error_not_two(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    session = Session.objects.get(name="probe-error")
    errors = Span.objects.filter(session=session, kind="error")
    assert errors.count() == 1
    assert errors.get().error_type == "ValueError"
    assert "search backend unavailable" in errors.get().error_message


def test_the_uploaded_print_output_is_in_the_session_stream(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    lines = TranscriptLine.objects.filter(session__external_id=TRACE_SUCCESS, role="log")
    assert lines.exists()
    assert any("agent starting" in line.text for line in lines)


def test_a_replayed_run_stores_nothing_twice(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    counts = (Session.objects.count(), Span.objects.count(), TranscriptLine.objects.count())
    replay(client, key)
    assert (Session.objects.count(), Span.objects.count(), TranscriptLine.objects.count()) == counts


def test_the_json_encoding_of_the_same_spans_merges_into_the_same_rows(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    spans = Span.objects.count()
    for request in captured("capture-main.jsonl"):
        if request["path"] == "/v1/traces":
            answer = client.post(
                "/v1/traces",
                json.dumps(request["body"]["otlp"]),
                content_type="application/json",
                headers={"X-API-Key": key},
            )
            assert answer.status_code == 200
    assert Span.objects.count() == spans


def test_the_sessions_api_shows_the_agentops_session(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay(client, key)
    from analytics.tasks import summarize_sessions_task

    summarize_sessions_task(list(Session.objects.values_list("pk", flat=True)))
    session = api(client, key, f"/api/v1/sessions/{TRACE_SUCCESS}/")
    assert session["name"] == "probe-success"
    assert session["llm_count"] == 3
    assert session["prompt_tokens"] == 55
    events = api(client, key, f"/api/v1/sessions/{TRACE_SUCCESS}/events/")["results"]
    assert {"llm", "tool", "action"} <= {e["kind"] for e in events}


def test_the_auto_session_and_its_log_arrive(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    answers = replay(client, key, "auto")
    assert {a.status_code for a in answers} == {200}
    session = Session.objects.get(name="default")
    assert session.tags == ["auto"]
    assert TranscriptLine.objects.filter(session=session, role="log").exists()


def test_spans_sent_before_the_token_are_accepted_with_the_key_header(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    """The SDK's token race: OTEL_EXPORTER_OTLP_TRACES_HEADERS=x-agentops-api-key=<key>."""
    _, key = project_with_key
    request = next(r for r in captured("capture-main.jsonl") if r["path"] == "/v1/traces")
    answer = client.post(
        "/v1/traces",
        raw_body("raw-main", request),
        content_type="application/x-protobuf",
        headers={"X-Agentops-Api-Key": key},
    )
    assert answer.status_code == 200
    assert answer["Content-Type"] == "application/x-protobuf"
    assert Span.objects.exists()


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer forged.token"}, 401)],
)
def test_traces_without_valid_credentials_get_401(
    client: Client, db: None, headers: dict[str, str], status: int
) -> None:
    answer = client.post("/v1/traces", b"", content_type="application/x-protobuf", headers=headers)
    assert answer.status_code == status


def test_bad_bodies_get_the_otlp_status_codes_and_store_nothing(
    client: Client, project_with_key: tuple[Project, str], settings: Any
) -> None:
    _, key = project_with_key
    request = next(r for r in captured("capture-main.jsonl") if r["path"] == "/v1/traces")
    body = raw_body("raw-main", request)
    headers = {"X-API-Key": key}

    truncated = client.post(
        "/v1/traces",
        body[: len(body) // 2],
        content_type="application/x-protobuf",
        headers=headers,
    )
    assert truncated.status_code == 400
    wrong_type = client.post("/v1/traces", body, content_type="text/plain", headers=headers)
    assert wrong_type.status_code == 415
    assert "application/x-protobuf" in wrong_type.json()["error"]
    bomb = client.post(
        "/v1/traces",
        gzip.compress(b"\0" * (settings.OBSERVATORY_MAX_BATCH_BYTES + 1)),
        content_type="application/x-protobuf",
        headers={**headers, "Content-Encoding": "gzip"},
    )
    assert bomb.status_code == 413
    settings.OBSERVATORY_MAX_BATCH_BYTES = 100
    too_big = client.post(
        "/v1/traces", body, content_type="application/x-protobuf", headers=headers
    )
    assert too_big.status_code == 413
    assert Span.objects.count() == 0
    assert Session.objects.count() == 0


def test_invalid_span_ids_are_refused_with_partial_success_and_the_rest_kept(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    request = next(r for r in captured("capture-main.jsonl") if r["seq"] == 8)
    otlp = request["body"]["otlp"]
    bad = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    bad["spanId"] = "zz"
    answer = client.post(
        "/v1/traces", json.dumps(otlp), content_type="application/json", headers={"X-API-Key": key}
    )
    assert answer.status_code == 200
    partial = answer.json()["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "spanId" in partial["errorMessage"]
    assert Span.objects.filter(kind="llm").count() == 3
    assert IngestRejection.objects.filter(source="otlp-traces").count() == 1


def test_the_legacy_v2_run_is_stored_with_its_agent_and_events(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    jwt = ""
    for request in captured("capture-legacy.jsonl"):
        if request["method"] != "POST" or not request["path"].startswith("/v2/"):
            continue
        headers = {"X-Agentops-Api-Key": key}
        if jwt:
            headers["Authorization"] = f"Bearer {jwt}"
        body = request["body"]
        body = body.get("json", body) if isinstance(body, dict) and "format" in body else body
        answer = client.post(
            request["path"], json.dumps(body), content_type="application/json", headers=headers
        )
        assert answer.status_code == 200, (request["path"], answer.content)
        if request["path"] == "/v2/create_session":
            assert answer.json()["status"] == "Success"
            jwt = answer.json()["jwt"]
    session = Session.objects.get()
    assert session.agents.exists()
    assert {"llm"} <= set(Span.objects.filter(session=session).values_list("kind", flat=True))
    assert session.end_state in ("success", "fail", "indeterminate")


def test_a_legacy_call_without_credentials_is_refused_with_a_message(
    client: Client, db: None
) -> None:
    answer = client.post("/v2/create_events", {"events": []}, content_type="application/json")
    assert answer.status_code == 401
    assert "X-Agentops-Api-Key" in answer.json()["message"]
