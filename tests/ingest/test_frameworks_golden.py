"""What a user sees after real frameworks export their OTLP (tests/fixtures/frameworks/, captured
by tests/frameworks/capture.py): one session per run, agents by name, messages with both ends,
costs; and the same stored result however the spans were split into requests or ordered."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ingest.models import Agent, ApiKey, Message, Project, Session, Span, Step, TraceLink, Workflow

# Captures of the same scenario differ in run ids (team and crew uuids) inside span names.
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
FRAMEWORKS = Path(__file__).resolve().parents[1] / "fixtures" / "frameworks"
CAPTURED = ("autogen", "openai_agents", "crewai", "smolagents", "pydantic_ai", "traceloop")

pytestmark = pytest.mark.django_db


def requests_of(framework: str, mode: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((FRAMEWORKS / framework / mode).glob("*-traces.bin"))]


def new_project(name: str) -> tuple[Project, str]:
    project = Project.objects.create(name=name, slug=name)
    _, key = ApiKey.generate(project)
    return project, key


def post_all(client: Client, key: str, bodies: list[bytes]) -> None:
    for body in bodies:
        answer = client.post(
            "/v1/traces", body, content_type="application/x-protobuf", headers={"X-API-Key": key}
        )
        assert answer.status_code == 200, answer.content


def ingest(client: Client, name: str, bodies: list[bytes]) -> Project:
    project, key = new_project(name)
    post_all(client, key, bodies)
    return project


def agent_names(project: Project) -> Counter[str]:
    return Counter(Agent.objects.filter(project=project).values_list("name", flat=True))


def messages(project: Project) -> Counter[tuple[str, tuple[str, ...]]]:
    rows = Message.objects.filter(project=project).values_list("sender", "receivers")
    return Counter((sender, tuple(receivers)) for sender, receivers in rows)


def session_names(project: Project) -> list[str]:
    names = Session.objects.filter(project=project).values_list("name", flat=True)
    return sorted(UUID.sub("<uuid>", name) for name in names)


def span_agents(project: Project) -> Counter[tuple[str, str]]:
    """(span name, name of the agent it ran under) for every span."""
    names = dict(Agent.objects.filter(project=project).values_list("external_id", "name"))
    rows = Span.objects.filter(project=project).values_list("name", "agent_external_id")
    return Counter((UUID.sub("<uuid>", name), names.get(agent, "")) for name, agent in rows)


def canonical(project: Project) -> dict[str, Any]:
    """Everything the relations decide, read back from the database, without row ids."""
    sessions = dict(Session.objects.filter(project=project).values_list("pk", "external_id"))
    return {
        "sessions": sorted(
            Session.objects.filter(project=project).values_list("external_id", "name")
        ),
        "links": sorted(
            (t, sessions[s], r)
            for t, s, r in TraceLink.objects.filter(project=project).values_list(
                "trace_id", "session_id", "reason"
            )
        ),
        "agents": sorted(
            (sessions[s], e, n)
            for s, e, n in Agent.objects.filter(project=project).values_list(
                "session_id", "external_id", "name"
            )
        ),
        "spans": sorted(
            (sessions[s], i, p, a, k, n)
            for s, i, p, a, k, n in Span.objects.filter(project=project).values_list(
                "session_id", "span_id", "parent_span_id", "agent_external_id", "kind", "name"
            )
        ),
        "messages": sorted(
            (sessions[s], m, snd, tuple(r), st)
            for s, m, snd, r, st in Message.objects.filter(project=project).values_list(
                "session_id", "message_id", "sender", "receivers", "status"
            )
        ),
        "workflows": sorted(
            (sessions[s], w, n, st)
            for s, w, n, st in Workflow.objects.filter(project=project).values_list(
                "session_id", "workflow_id", "name", "status"
            )
        ),
        "steps": sorted(
            (w, i, n, a, st)
            for w, i, n, a, st in Step.objects.filter(project=project).values_list(
                "workflow__workflow_id", "step_id", "name", "agent_external_id", "status"
            )
        ),
    }


def regrouped(bodies: list[bytes], rng: random.Random) -> list[bytes]:
    """The same resource spans shuffled and split into random requests."""
    pieces: list[Any] = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        pieces.extend(request.resource_spans)
    rng.shuffle(pieces)
    out: list[bytes] = []
    while pieces:
        size = rng.randint(1, max(1, len(pieces)))
        chunk, pieces = pieces[:size], pieces[size:]
        out.append(ExportTraceServiceRequest(resource_spans=chunk).SerializeToString())
    return out


# --- order and batch independence -------------------------------------------------------------


@pytest.mark.parametrize("framework", CAPTURED)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_split_and_order_of_the_requests_stores_the_same_result(
    client: Client, framework: str, seed: int
) -> None:
    bodies = requests_of(framework, "simple")
    reference = canonical(ingest(client, f"{framework}-ref", bodies))
    shuffled = canonical(
        ingest(client, f"{framework}-{seed}", regrouped(bodies, random.Random(seed)))
    )

    differences = {
        key: (
            sorted(set(shuffled[key]) - set(reference[key]))[:3],
            sorted(set(reference[key]) - set(shuffled[key]))[:3],
        )
        for key in reference
        if shuffled[key] != reference[key]
    }
    assert differences == {}


@pytest.mark.parametrize("framework", CAPTURED)
def test_batched_and_one_span_per_request_give_what_the_user_sees_alike(
    client: Client, framework: str
) -> None:
    batched = ingest(client, f"{framework}-b", requests_of(framework, "batched"))
    simple = ingest(client, f"{framework}-s", requests_of(framework, "simple"))

    assert agent_names(simple) == agent_names(batched)
    assert messages(simple) == messages(batched)
    assert span_agents(simple) == span_agents(batched)
    assert session_names(simple) == session_names(batched)


# --- what each framework looks like ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_autogen_team_run_is_one_session_with_its_agents_and_messages(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"autogen-{mode}", requests_of("autogen", mode))

    team = Session.objects.get(project=project, external_id__startswith="autogen-team-")
    reasons = set(TraceLink.objects.filter(session=team).values_list("reason", flat=True))
    team_rule = f"AutoGen team {team.external_id[13:]} (agent types, topics)"
    # The output-topic publishes name no team: they follow the span link to their producer.
    # The agents were created (each a trace of its own) just before the team used them.
    team_id = team.external_id[13:]
    assert team_rule in reasons
    assert {r.split(" to trace ")[0] for r in reasons - {team_rule}} == {
        f"span link from 'autogen publish output_topic_{team_id}.({team_id})-T'",
        f"AutoGen agent researcher created before team {team_id} used it (the next team run "
        "with that agent)",
        f"AutoGen agent writer created before team {team_id} used it (the next team run "
        "with that agent)",
    }
    assert TraceLink.objects.filter(session=team).count() == 16  # every trace of the run
    assert {"researcher", "writer"} <= set(agent_names(project))
    assert not Message.objects.filter(project=project).exclude(session=team)
    pairs = {(sender, receivers) for sender, receivers in messages(project)}
    assert ("RoundRobinGroupChatManager", ("researcher",)) in pairs
    assert ("RoundRobinGroupChatManager", ("writer",)) in pairs


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_autogen_team_run_is_exactly_one_session(client: Client, mode: str) -> None:
    project = ingest(client, f"autogen-one-{mode}", requests_of("autogen", mode))

    (run,) = Session.objects.filter(project=project)
    # Each agent as created (create_agent) and as invoked (once each in this run), all in it.
    assert Counter(Agent.objects.filter(session=run).values_list("name", flat=True)) == Counter(
        {"researcher": 2, "writer": 2}
    )


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_openai_agents_hand_off_is_a_message_and_the_trace_wrapper_no_agent(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"oa-{mode}", requests_of("openai_agents", mode))

    assert Session.objects.filter(project=project).count() == 1
    assert set(agent_names(project)) == {"triage_agent", "billing_agent"}
    assert messages(project) == Counter({("triage_agent", ("billing_agent",)): 1})


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_crewai_agents_are_their_roles_and_the_task_hand_over_is_inferred(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"crew-{mode}", requests_of("crewai", mode))

    assert set(agent_names(project)) == {"Researcher", "Writer"}
    # The sequential hand-over (inferred) and the Writer's delegation tool call (recorded),
    # whose sender is known only once the Writer's span is stored.
    assert messages(project) == Counter(
        {("Researcher", ("Writer",)): 1, ("Writer", ("Researcher",)): 1}
    )
    inferred = {
        m.sender: m.body.metadata["observatory.inferred"]
        for m in Message.objects.filter(project=project)
    }
    assert inferred == {"Researcher": True, "Writer": False}
    delegation = Message.objects.get(project=project, sender="Writer")
    assert delegation.status == "processed"


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_smolagents_agents_are_named_after_the_agent_not_the_span(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"smol-{mode}", requests_of("smolagents", mode))

    assert set(agent_names(project)) == {"manager", "researcher"}
    # The managed agent's run under the manager's step: an inferred delegation.
    assert messages(project) == Counter({("manager", ("researcher",)): 1})
    call = Message.objects.get(project=project)
    assert (call.status, call.channel) == ("processed", "delegation")
    assert call.body.metadata["observatory.inferred"] is True


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_pydantic_ai_cost_is_the_framework_reported_one_with_finish_reasons(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"pyd-{mode}", requests_of("pydantic_ai", mode))

    assert set(agent_names(project)) == {"planner", "researcher"}
    # invoke_agent researcher under the planner's execute_tool ask_researcher.
    assert messages(project) == Counter({("planner", ("researcher",)): 1})
    calls = Span.objects.filter(project=project, kind="llm")
    assert calls.count() == 4
    assert all(c.cost and not c.is_cost_estimated for c in calls)
    reasons = [c.payload.attributes.get("observatory.finish_reasons") for c in calls]
    assert ["stop"] in reasons


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_traceloop_workflow_holds_its_task_however_the_spans_were_exported(
    client: Client, mode: str
) -> None:
    project = ingest(client, f"tl-{mode}", requests_of("traceloop", mode))

    assert Session.objects.filter(project=project).count() == 1
    assert set(agent_names(project)) == {"planner", "booker"}
    runs = {w.name: w for w in Workflow.objects.filter(project=project)}
    assert list(runs) == ["trip-booking"]
    assert runs["trip-booking"].status == "success"
    steps = Step.objects.filter(workflow=runs["trip-booking"]).values_list(
        "name", "agent_external_id", "status"
    )
    assert list(steps) == [("book", "booker", "ok")]


# --- CAMEL through its agentops 0.3 integration (v2 JSON, not OTLP) ---------------------------


def replay_agentops_v2(client: Client, key: str, framework: str, mode: str) -> None:
    """Post the captured /v2/* bodies in the order agentops sent them, with the key header and,
    after create_session, the jwt our server answered."""
    folder = FRAMEWORKS / framework / mode
    index = json.loads((folder / "index.json").read_text())
    jwt = ""
    for request in index["requests"]:
        headers = {"X-Agentops-Api-Key": key}
        if jwt:
            headers["Authorization"] = f"Bearer {jwt}"
        answer = client.post(
            request["path"],
            (folder / request["file"]).read_bytes(),
            content_type="application/json",
            headers=headers,
        )
        assert answer.status_code == 200, (request["path"], answer.content)
        if request["path"] == "/v2/create_session":
            jwt = answer.json()["jwt"]


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_camel_role_playing_is_one_session_with_two_agents_and_their_calls(
    client: Client, mode: str
) -> None:
    project, key = new_project(f"camel-{mode}")
    replay_agentops_v2(client, key, "camel", mode)

    session = Session.objects.get(project=project)
    assert session.tags == ["CAMEL X AgentOps"]
    agents = Agent.objects.filter(project=project)
    assert agents.count() == 2
    calls = Span.objects.filter(project=project, kind="llm")
    assert calls.count() == 5
    # Every LLM call is tied to the ChatAgent that made it: 2 by the Professor, 3 by the Searcher.
    assert sorted(Counter(calls.values_list("agent_external_id", flat=True)).values()) == [2, 3]
    tool = Span.objects.get(project=project, kind="tool", name="math_add")
    assert tool.agent_external_id in set(agents.values_list("external_id", flat=True))


@pytest.mark.parametrize("mode", ["batched", "simple"])
def test_camel_agents_are_named_by_their_roles_with_the_turns_as_messages(
    client: Client, mode: str
) -> None:
    project, key = new_project(f"camel-roles-{mode}")
    replay_agentops_v2(client, key, "camel", mode)

    # agentops calls both "ChatAgent"; their system prompts give the roles.
    assert set(agent_names(project)) == {"Professor", "Searcher"}
    # A turn per LLM call whose prompt ends with the other role's message (the third call
    # ends with a tool result: no turn).
    assert messages(project) == Counter(
        {("Professor", ("Searcher",)): 2, ("Searcher", ("Professor",)): 2}
    )
    turns = Message.objects.filter(project=project)
    assert {t.status for t in turns} == {"processed"}
    assert all(t.body.metadata["observatory.inferred"] for t in turns)
    first = turns.earliest("started_at")
    assert first.body.content is not None
    assert first.body.content.startswith("Now start to give me instructions")
