"""A key may do only what its scopes say: an agent's `ingest` key sends but cannot read prompts,
requeue or take requeued messages from the real consumer; `read`, `actions` and `poll` keys
likewise. Each refusal is a 403 naming the missing scope."""

from __future__ import annotations

import json
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from ingest.models import ApiKey
from tests.builders import make_message, make_project, make_session

pytestmark = pytest.mark.django_db

SCOPES = ["ingest", "read", "actions", "poll", "erase"]
BATCH = {
    "records": [
        {
            "type": "session.start",
            "id": "scoped-1",
            "session_id": "scoped",
            "started_at": "2026-11-20T10:00:00Z",
        }
    ]
}


def _json(client: Client, path: str, key: str, body: Any) -> Any:
    return client.post(
        path, json.dumps(body), content_type="application/json", headers={"X-API-Key": key}
    )


REQUESTS: dict[str, tuple[str, Callable[[Client, str, dict[str, Any]], Any]]] = {
    "native ingest": ("ingest", lambda c, k, t: _json(c, "/api/v1/ingest", k, BATCH)),
    "OTLP traces": (
        "ingest",
        lambda c, k, t: c.post(
            "/v1/traces",
            ExportTraceServiceRequest(resource_spans=[ResourceSpans()]).SerializeToString(),
            content_type="application/x-protobuf",
            headers={"X-API-Key": k},
        ),
    ),
    "agentops token": ("ingest", lambda c, k, t: _json(c, "/v3/auth/token", k, {"api_key": k})),
    "read sessions": (
        "read",
        lambda c, k, t: c.get("/api/v1/sessions/", headers={"X-API-Key": k}),
    ),
    "read a message's content": (
        "read",
        lambda c, k, t: c.get(f"/api/v1/messages/{t['dead'].pk}/", headers={"X-API-Key": k}),
    ),
    "requeue": (
        "actions",
        lambda c, k, t: _json(c, f"/api/v1/dead-letters/{t['dead'].pk}/requeue/", k, {}),
    ),
    "delete a session": (
        "erase",
        lambda c, k, t: c.delete(
            f"/api/v1/sessions/{t['doomed'].external_id}/", headers={"X-API-Key": k}
        ),
    ),
    "request an erasure": (
        "erase",
        lambda c, k, t: _json(c, "/api/v1/erasures/", k, {"kind": "tag", "value": "erase-me"}),
    ),
    "list erasures": (
        "erase",
        lambda c, k, t: c.get("/api/v1/erasures/", headers={"X-API-Key": k}),
    ),
    "poll": (
        "poll",
        lambda c, k, t: _json(c, "/api/v1/requeued-messages/poll/", k, {"poll_id": "p1"}),
    ),
}


@pytest.fixture
def things() -> dict[str, Any]:
    project, _ = make_project(name="Scoped")
    return {
        "project": project,
        "dead": make_message(make_session(project), status="dead_lettered"),
        "doomed": make_session(project, tags=["erase-me"]),
    }


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("request_name", list(REQUESTS))
def test_a_key_does_only_what_its_scope_allows(
    things: dict[str, Any], scope: str, request_name: str
) -> None:
    needed, send = REQUESTS[request_name]
    _, key = ApiKey.generate(things["project"], scopes=[scope])

    response = send(Client(), key, things)

    if scope == needed:
        assert response.status_code == 200, response.content[:300]
    else:
        assert response.status_code == 403, response.content[:300]
        assert f"--scope {needed}" in response.content.decode()


def test_create_api_key_makes_an_ingest_key_by_default_and_the_scopes_asked_for() -> None:
    make_project(name="Cli")
    out = []
    for args in ([], ["--scope", "read", "--scope", "poll"]):
        text = StringIO()
        call_command("create_api_key", "cli", *args, stdout=text)
        out.append(text.getvalue())

    assert "scopes: ingest:" in out[0]
    assert "scopes: read poll:" in out[1]
    assert [k.scopes for k in ApiKey.objects.filter(created_by="create_api_key")] == [
        "ingest",
        "read poll",
    ]
