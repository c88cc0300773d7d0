"""Messages, dead letters, the requeue round trip, the agent graph's edges, workflows and steps
through the REST API."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from analytics.tasks import enqueue_requeue_webhook
from ingest.models import Membership, Message, Project
from tests.builders import T0, make_message, make_project, make_session, make_workflow
from tests.responses import streamed

pytestmark = pytest.mark.django_db

KeyClient = Callable[[str], APIClient]


@pytest.fixture
def arena(project_with_key: tuple[Project, str]) -> dict[str, Any]:
    project, key = project_with_key
    session = make_session(project, external_id="arena-1", agents=("attacker", "target"))
    first = make_message(session, message_id="m1", sender="attacker", receivers=["target"])
    reply = make_message(
        session,
        message_id="m2",
        sender="target",
        receivers=["judge"],
        causation_id="m1",
        at=T0 + timedelta(seconds=1),
        delivery_ms=1000,
    )
    dead = make_message(
        session,
        message_id="m3",
        sender="judge",
        receivers=["attacker"],
        status="dead_lettered",
        causation_id="m2",
        at=T0 + timedelta(seconds=2),
        error_type="MaxRetries",
        content="<script>alert(1)</script>",
    )
    return {"project": project, "key": key, "session": session, "messages": [first, reply, dead]}


def test_messages_list_filters_by_agent_edge_and_status(
    arena: dict[str, Any], key_client: KeyClient
) -> None:
    client = key_client(arena["key"])
    ids = lambda url: [m["message_id"] for m in client.get(url).json()["results"]]  # noqa: E731
    assert ids("/api/v1/messages/") == ["m3", "m2", "m1"]
    assert ids("/api/v1/messages/?agent=target") == ["m2", "m1"]
    assert ids("/api/v1/messages/?receiver=target") == ["m1"]
    assert ids("/api/v1/messages/?edge=target->judge") == ["m2"]
    assert ids("/api/v1/messages/?status=dead_lettered&session=arena-1") == ["m3"]
    assert client.get("/api/v1/messages/?edge=nonsense").json()["field"] == "edge"


def test_messages_csv_has_the_list_fields_and_every_row(
    arena: dict[str, Any], key_client: KeyClient
) -> None:
    response = key_client(arena["key"]).get("/api/v1/messages/?format=csv&ordering=started_at")
    rows = list(csv.DictReader(io.StringIO(streamed(response).decode())))
    assert [row["message_id"] for row in rows] == ["m1", "m2", "m3"]
    assert rows[2]["receivers"] == '["attacker"]'
    assert rows[2]["preview"] == "<script>alert(1)</script>"


def test_message_detail_has_content_lifecycle_and_causality(
    arena: dict[str, Any], key_client: KeyClient
) -> None:
    reply = arena["messages"][1]
    body = key_client(arena["key"]).get(f"/api/v1/messages/{reply.pk}/").json()
    assert body["content"] == "do the thing"
    assert body["metadata"] == {"k": "v"}
    assert (body["ancestors"], body["descendants"]) == (["m1"], ["m3"])


def test_list_queries_do_not_grow_with_rows(
    arena: dict[str, Any], key_client: KeyClient, django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        make_message(arena["session"], message_id=f"x{n}")
    client = key_client(arena["key"])
    with django_assert_max_num_queries(4):
        assert len(client.get("/api/v1/messages/?page_size=50").json()["results"]) == 33


def test_another_projects_messages_are_invisible(
    arena: dict[str, Any], key_client: KeyClient
) -> None:
    _, other_key = make_project(name="Other")
    client = key_client(other_key)
    assert client.get("/api/v1/messages/").json()["results"] == []
    assert client.get(f"/api/v1/messages/{arena['messages'][0].pk}/").status_code == 404
    dead = arena["messages"][2]
    assert client.post(f"/api/v1/dead-letters/{dead.pk}/requeue/").status_code == 404


def ingest(key: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    response = Client().post(
        "/api/v1/ingest",
        data=json.dumps({"records": records}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    return dict(response.json())


def lifecycle(stage: str, at: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "agent_message",
        "id": f"order-{stage}-{at}",
        "session_id": "shop-1",
        "message_id": "order-42",
        "stage": stage,
        "at": f"2026-11-21T10:00:{at}Z",
        **fields,
    }


def test_requeue_round_trip_reaches_the_agent_system_through_the_poll(
    project_with_key: tuple[Project, str],
    key_client: KeyClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """Ingested as dead-lettered → listed → requeued → polled (twice with the same poll id,
    then empty for a new one) → re-sent by the agent system → recovered."""
    _, key = project_with_key
    capture_on_commit = django_capture_on_commit_callbacks
    ingest(
        key,
        [
            lifecycle("sent", "00", sender="planner", receivers=["coder"], content={"task": 1}),
            lifecycle("failed", "01", error_type="Timeout", attempt=1),
            lifecycle("dead_lettered", "05", error_type="MaxRetries", error_message="gave up"),
        ],
    )
    client = key_client(key)
    [dead] = client.get("/api/v1/dead-letters/?state=open").json()["results"]
    assert (dead["error_type"], dead["attempt_count"]) == ("MaxRetries", 1)

    with capture_on_commit(execute=False) as callbacks:
        answer = client.post(f"/api/v1/dead-letters/{dead['id']}/requeue/").json()
    assert answer["changed"] == 1
    assert answer["messages"][0]["dead_letter_state"] == "requeued"
    [webhook] = callbacks  # the webhook is queued once the requeue is committed
    assert (webhook.func, webhook.args) == (enqueue_requeue_webhook, ([dead["id"]],))

    polled = client.post("/api/v1/requeued-messages/poll/", {"poll_id": "p1"}, format="json")
    [message] = polled.json()["messages"]
    assert (message["message_id"], message["content"]) == ("order-42", {"task": 1})
    again = client.post("/api/v1/requeued-messages/poll/", {"poll_id": "p1"}, format="json")
    assert again.json()["messages"] == polled.json()["messages"]
    empty = client.post("/api/v1/requeued-messages/poll/", {"poll_id": "p2"}, format="json")
    assert empty.json()["messages"] == []

    ingest(key, [lifecycle("retried", "20", attempt=2), lifecycle("processed", "21")])
    row = Message.objects.get()
    assert (row.status, row.dead_letter_state, row.attempt_count) == ("processed", "recovered", 2)
    assert client.get("/api/v1/dead-letters/?state=open").json()["results"] == []


def test_the_poll_needs_an_api_key(arena: dict[str, Any], admin_user: Any) -> None:
    client = APIClient()
    client.force_login(admin_user)
    response = client.post("/api/v1/requeued-messages/poll/", {"poll_id": "x"}, format="json")
    assert response.status_code == 403


def test_bulk_resolve_and_requeue(arena: dict[str, Any], key_client: KeyClient) -> None:
    session = arena["session"]
    more = [make_message(session, status="failed", message_id=f"f{n}") for n in range(3)]
    client = key_client(arena["key"])
    ids = [m.pk for m in more]
    resolved = client.post(
        "/api/v1/dead-letters/resolve/", {"ids": ids[:2], "note": "known flake"}, format="json"
    ).json()
    assert resolved["changed"] == 2
    assert {m["resolution_note"] for m in resolved["messages"]} == {"known flake"}
    requeued = client.post("/api/v1/dead-letters/requeue/", {"ids": ids}, format="json").json()
    assert requeued["changed"] == 3
    bad = client.post("/api/v1/dead-letters/requeue/", {"ids": ["x"]}, format="json")
    assert bad.status_code == 400
    assert bad.json()["field"].startswith("ids")


def test_agent_edges_with_counts_failure_rate_and_p95(
    arena: dict[str, Any], key_client: KeyClient
) -> None:
    """Whole hours come from the hourly edge rollups the analytics refresh builds; their p95 is
    the middle of the 10 %-wide histogram bin that holds it."""
    from analytics.refresh import refresh_edge_rollups_of_day

    refresh_edge_rollups_of_day(arena["project"].pk, datetime(2026, 11, 21, tzinfo=UTC))
    url = "/api/v1/agent-edges/?since=2026-11-21T00:00:00Z&until=2026-11-22T00:00:00Z"
    edges = key_client(arena["key"]).get(url).json()
    by_edge = {(e["sender"], e["receiver"]): e for e in edges}
    assert by_edge[("judge", "attacker")]["failure_rate"] == 1.0
    assert by_edge[("target", "judge")]["p95_delivery_ms"] == pytest.approx(1000, rel=0.05)
    assert by_edge[("attacker", "target")]["messages"] == 1
    csv_text = key_client(arena["key"]).get(url + "&format=csv").content.decode()
    assert csv_text.splitlines()[0].startswith("sender,receiver,messages")


def test_agent_edges_read_the_time_range_and_project_as_every_analytics_list_does(
    arena: dict[str, Any],
    key_client: KeyClient,
    user_client: Callable[[Any], APIClient],
    django_user_model: Any,
) -> None:
    client = key_client(arena["key"])
    bad_time = client.get("/api/v1/agent-edges/?since=yesterday")
    assert bad_time.status_code == 400
    assert bad_time.json()["field"] == "since"
    reversed_range = client.get(
        "/api/v1/agent-edges/?since=2026-11-22T00:00:00Z&until=2026-11-21T00:00:00Z"
    )
    assert reversed_range.status_code == 400
    assert reversed_range.json()["field"] == "since"
    too_long = client.get("/api/v1/agent-edges/?days=401")
    assert too_long.status_code == 400
    assert too_long.json()["field"] == "days"
    assert "400" in too_long.json()["error"]
    # days back from until: the arena's messages of 2026-11-21 are inside three days before the 23rd.
    from analytics.refresh import refresh_edge_rollups_of_day

    refresh_edge_rollups_of_day(arena["project"].pk, datetime(2026, 11, 21, tzinfo=UTC))
    edges = client.get("/api/v1/agent-edges/?until=2026-11-23T00:00:00Z&days=3").json()
    assert {(e["sender"], e["receiver"]) for e in edges} >= {("attacker", "target")}
    # A person with one project need not name it (as for trends and agents); with two they must.
    member = django_user_model.objects.create_user("solo", password="pw-solo-123456")
    Membership.objects.create(user=member, project=arena["project"], role="viewer")
    as_member = user_client(member)
    assert (
        as_member.get("/api/v1/agent-edges/?days=3&until=2026-11-23T00:00:00Z").status_code == 200
    )
    make_project(name="Second", user=member)
    unnamed = as_member.get("/api/v1/agent-edges/")
    assert unnamed.status_code == 400
    assert unnamed.json()["field"] == "project"


def test_workflows_and_steps_lists(arena: dict[str, Any], key_client: KeyClient) -> None:
    make_workflow(arena["session"], steps=[("attack", 0, 2, []), ("judge", 3, 4, ["attack"])])
    client = key_client(arena["key"])
    [workflow] = client.get("/api/v1/workflows/").json()["results"]
    assert (workflow["name"], workflow["step_count"]) == ("arena round", 2)
    steps = client.get("/api/v1/steps/?workflow_name=arena round&ordering=started_at").json()
    assert [(s["step_id"], s["depends_on"]) for s in steps["results"]] == [
        ("attack", []),
        ("judge", ["attack"]),
    ]
