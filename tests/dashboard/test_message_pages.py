"""Pages for multi-agent systems through the Django test client: they render, stay scoped to
the user's projects, escape agent text, and cost a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client

from ingest.models import Message, Project
from tests.builders import T0, make_message, make_project, make_session, make_user, make_workflow

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert(1)</script>"


@pytest.fixture
def user() -> Any:
    return make_user()


@pytest.fixture
def project(user: Any) -> Project:
    return make_project(user=user)[0]


@pytest.fixture
def client_in(client: Client, user: Any) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def arena(project: Project) -> Any:
    session = make_session(project, agents=("attacker", "target", "judge"))
    make_message(session, message_id="m1", sender="attacker", receivers=["target"], content=SCRIPT)
    make_message(
        session,
        message_id="m2",
        sender="target",
        receivers=["judge"],
        causation_id="m1",
        at=T0 + timedelta(seconds=1),
    )
    make_message(
        session,
        message_id="m3",
        sender="judge",
        receivers=[SCRIPT],
        status="dead_lettered",
        causation_id="m2",
        error_type="MaxRetries",
        at=T0 + timedelta(seconds=2),
    )
    return session


def test_every_page_renders_and_escapes_agent_text(client_in: Client, arena: Any) -> None:
    message = Message.objects.get(message_id="m3")
    workflow = make_workflow(arena, name=SCRIPT, steps=[("a", 0, 1, []), ("b", 2, 3, ["a"])])
    agent = arena.agents.get(name="attacker")
    for url in (
        "/messages/",
        f"/messages/{message.pk}/",
        "/dead-letters/",
        "/dead-letters/?state=all",
        f"/sessions/{arena.pk}/messages/",
        f"/sessions/{arena.pk}/messages/?size=1&start=1",
        "/agents/?range=30d&from=2026-11-20",
        f"/agents/{agent.pk}/",
        "/workflows/?from=2026-11-20",
        f"/workflows/{workflow.pk}/",
        f"/workflows/{workflow.pk}/?lanes=step",
    ):
        response = client_in.get(url)
        assert response.status_code == 200, url
        assert SCRIPT.encode() not in response.content, url


def test_message_detail_shows_lifecycle_and_causality_chain(client_in: Client, arena: Any) -> None:
    reply = Message.objects.get(message_id="m2")
    page = client_in.get(f"/messages/{reply.pk}/", headers={"HX-Request": "true"})
    text = page.content.decode()
    assert 'class="message-panel"' in text
    assert "<html" not in text  # the htmx panel only
    assert f"/messages/{Message.objects.get(message_id='m1').pk}/" in text
    assert f"/messages/{Message.objects.get(message_id='m3').pk}/" in text


def test_dead_letter_page_groups_failures_and_requeues(client_in: Client, arena: Any) -> None:
    page = client_in.get("/dead-letters/").content.decode()
    assert "MaxRetries" in page
    assert "judge → &lt;script&gt;" in page
    dead = Message.objects.get(message_id="m3")
    answer = client_in.post("/dead-letters/action/", {"one": dead.pk, "next": "/dead-letters/"})
    assert answer.status_code == 302
    dead.refresh_from_db()
    assert (dead.dead_letter_state, dead.requeue_count) == ("requeued", 1)
    client_in.post("/dead-letters/action/", {"ids": [dead.pk], "action": "resolve", "note": "ok"})
    dead.refresh_from_db()
    assert (dead.dead_letter_state, dead.resolution_note) == ("resolved", "ok")


def test_other_projects_objects_are_not_found(client_in: Client, arena: Any) -> None:
    other, _ = make_project(name="Other")
    session = make_session(other)
    message = make_message(session, status="failed")
    workflow = make_workflow(session)
    for url in (
        f"/messages/{message.pk}/",
        f"/workflows/{workflow.pk}/",
        f"/sessions/{session.pk}/messages/",
    ):
        assert client_in.get(url).status_code == 404
    client_in.post("/dead-letters/action/", {"one": message.pk})
    message.refresh_from_db()
    assert message.dead_letter_state == "open"


def test_sequence_page_queries_do_not_grow_with_messages(
    client_in: Client, arena: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        make_message(arena, message_id=f"x{n}", at=T0 + timedelta(seconds=3 + n))
    with django_assert_max_num_queries(12):
        assert client_in.get(f"/sessions/{arena.pk}/messages/?size=20").status_code == 200
    with django_assert_max_num_queries(12):
        assert client_in.get("/dead-letters/?state=all").status_code == 200


def test_agents_named_by_messages_rather_than_by_id_get_their_message_counts(
    client_in: Client, arena: Any
) -> None:
    """OTLP agents are stored under their span id while OTLP messages name them by name; the
    builders store agents the same way (id "agent-1", name "attacker")."""
    from analytics import queries

    judge = arena.agents.get(name="judge")
    assert judge.external_id != "judge"
    assert queries.agent_message_counts(judge) == {"sent": 1, "received": 1, "failed": 1}
    assert [m.message_id for m in queries.agent_messages(judge, limit=10)] == ["m3", "m2"]
    listed = {a.name: a for a in queries.agents_with_traffic([arena.project_id])}
    # sent_count and failed_count are annotations of agents_with_traffic, not Agent fields.
    assert (listed["judge"].sent_count, listed["judge"].failed_count) == (1, 1)  # type: ignore[attr-defined]
    assert listed["attacker"].sent_count == 1  # type: ignore[attr-defined]
    page = client_in.get(f"/agents/{judge.pk}/").content.decode()
    assert 'Messages sent</span><span class="kpi-value">1<' in page


def test_a_hand_off_the_framework_only_implied_says_inferred_and_by_which_rule(
    client_in: Client, project: Project, arena: Any
) -> None:
    from ingest.models import ApiKey
    from tests.ingest.test_frameworks_golden import requests_of

    _, key = ApiKey.generate(project)
    for body in requests_of("pydantic_ai", "batched"):  # the planner delegates through a tool
        answer = client_in.post(
            "/v1/traces", body, content_type="application/x-protobuf", headers={"X-API-Key": key}
        )
        assert answer.status_code == 200, answer.content
    delegated = Message.objects.get(project=project, sender="planner")
    recorded = Message.objects.get(project=project, message_id="m1")

    inferred_page = client_in.get(f"/messages/{delegated.pk}/").content.decode()
    recorded_page = client_in.get(f"/messages/{recorded.pk}/").content.decode()

    assert 'id="message-inferred"' in inferred_page
    assert "inferred from its spans (agent span under agent)" in inferred_page
    assert 'id="message-inferred"' not in recorded_page and ">recorded<" in recorded_page
