"""A trace that names no session but links to another trace (a queue consumer, AutoGen's runtime
at every publish) is part of its producer's session, whichever request comes first; AutoGen's
create_agent traces join the team run that uses the agent next."""

from __future__ import annotations

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from ingest.models import Message, Project, Session, Step, TraceLink
from ingest.models import Span as SpanRow
from tests.builders import attrs
from tests.ingest.test_otlp_requests import START, body, post

PRODUCER = bytes.fromhex("11" * 16)
CONSUMER = bytes.fromhex("22" * 16)
LATER_CONSUMER = bytes.fromhex("33" * 16)


def traced(
    trace: bytes, number: int, *, link_to: bytes = b"", session: str = "", parent: int = 0
) -> Span:
    attributes = {"session.id": session} if session else {}
    span = Span(
        trace_id=trace,
        span_id=number.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=f"work{number}",
        start_time_unix_nano=START + number,
        end_time_unix_nano=START + number + 1000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )
    if link_to:
        span.links.add(trace_id=link_to, span_id=(1).to_bytes(8, "big"))
    return span


PRODUCER_SPAN = traced(PRODUCER, 1, session="conv-7")
CONSUMER_ROOT = traced(CONSUMER, 2, link_to=PRODUCER)
CONSUMER_CHILD = traced(CONSUMER, 3, parent=2)
# Links to the consumer, not to the producer: it follows the consumer into its session.
SECOND_HOP = traced(LATER_CONSUMER, 4, link_to=CONSUMER)


@pytest.mark.parametrize(
    "order",
    [
        [PRODUCER_SPAN, CONSUMER_ROOT, CONSUMER_CHILD, SECOND_HOP],
        [SECOND_HOP, CONSUMER_CHILD, CONSUMER_ROOT, PRODUCER_SPAN],
        [CONSUMER_CHILD, SECOND_HOP, PRODUCER_SPAN, CONSUMER_ROOT],
    ],
    ids=["producer-first", "producer-last", "mixed"],
)
def test_linked_traces_join_the_producers_session_in_any_order(
    client: Client, project_with_key: tuple[Project, str], order: list[Span]
) -> None:
    _, key = project_with_key
    for span in order:
        post(client, key, body(span))

    assert list(Session.objects.values_list("external_id", flat=True)) == ["conv-7"]
    assert SpanRow.objects.filter(session__external_id="conv-7").count() == 4
    reasons = dict(TraceLink.objects.values_list("trace_id", "reason"))
    assert reasons[PRODUCER.hex()] == "session.id=conv-7"
    assert reasons[CONSUMER.hex()] == f"span link from 'work2' to trace {PRODUCER.hex()}"
    assert reasons[LATER_CONSUMER.hex()] == f"span link from 'work4' to trace {CONSUMER.hex()}"


def test_a_trace_with_a_session_attribute_is_not_moved_by_its_span_links(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, body(PRODUCER_SPAN))
    post(client, key, body(traced(CONSUMER, 2, link_to=PRODUCER, session="conv-8")))

    sessions = dict(SpanRow.objects.values_list("span_id", "session__external_id"))
    assert sessions == {
        (1).to_bytes(8, "big").hex(): "conv-7",
        (2).to_bytes(8, "big").hex(): "conv-8",
    }


def test_a_stored_link_is_not_replaced_by_a_span_link_of_a_later_request(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post(client, key, body(traced(CONSUMER, 3, session="conv-9")))
    post(client, key, body(PRODUCER_SPAN, CONSUMER_ROOT))

    assert TraceLink.objects.get(trace_id=CONSUMER.hex()).session.external_id == "conv-9"
    assert set(
        SpanRow.objects.filter(trace_id=CONSUMER.hex()).values_list(
            "session__external_id", flat=True
        )
    ) == {"conv-9"}


# --- AutoGen agents created before their team run --------------------------------------------

TEAM = "9afd8895-274e-4c14-a035-89056bc6fbb2"
MINUTE = 60 * 10**9


def autogen(trace: bytes, number: int, operation: str, at: int) -> bytes:
    attributes = {"gen_ai.operation.name": operation, "gen_ai.agent.name": "researcher"}
    if operation == "invoke_agent":
        attributes["gen_ai.agent.id"] = f"researcher_{TEAM}/{TEAM}"
    span = Span(
        trace_id=trace,
        span_id=number.to_bytes(8, "big"),
        name=f"{operation} researcher",
        start_time_unix_nano=START + at,
        end_time_unix_nano=START + at + 1000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )
    scope = ScopeSpans(scope=InstrumentationScope(name="autogen-core"), spans=[span])
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[scope])]
    ).SerializeToString()


@pytest.mark.parametrize("created_first", [True, False])
@pytest.mark.parametrize(("minutes_before", "joins"), [(1, True), (20, False)])
def test_an_autogen_agent_created_shortly_before_a_team_run_is_in_that_run(
    client: Client,
    project_with_key: tuple[Project, str],
    created_first: bool,
    minutes_before: int,
    joins: bool,
) -> None:
    _, key = project_with_key
    creation = autogen(PRODUCER, 1, "create_agent", 0)
    use = autogen(CONSUMER, 2, "invoke_agent", minutes_before * MINUTE)
    for request in [creation, use] if created_first else [use, creation]:
        post(client, key, request)

    sessions = dict(SpanRow.objects.values_list("trace_id", "session__external_id"))
    assert sessions[CONSUMER.hex()] == f"autogen-team-{TEAM}"
    assert (sessions[PRODUCER.hex()] == f"autogen-team-{TEAM}") is joins
    assert Session.objects.count() == (1 if joins else 2)


# --- both ends of a message and a step's agent, however the spans were split ------------------


def plain(trace: bytes, number: int, name: str, parent: int = 0, **attributes: str) -> Span:
    return Span(
        trace_id=trace,
        span_id=number.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        start_time_unix_nano=START + number * 1000,
        end_time_unix_nano=START + 10**6 - number * 1000,
        attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
    )


QUEUE = {"messaging.system": "kafka", "messaging.destination.name": "tasks"}
PLANNER_TRACE = [
    plain(
        PRODUCER,
        1,
        "invoke_agent planner",
        **attrs({"gen_ai.operation.name": "invoke_agent"}),
        **attrs({"gen_ai.agent.name": "planner", "session.id": "conv-1"}),
    ),
    plain(
        PRODUCER,
        2,
        "plan.task",
        1,
        **{"traceloop.span.kind": "task"},
        **{"traceloop.entity.name": "plan", "session.id": "conv-1"},
    ),
    plain(
        PRODUCER,
        3,
        "send tasks",
        2,
        **QUEUE,
        **{"messaging.operation.type": "send", "messaging.message.id": "m-1"},
        **{"session.id": "conv-1"},
    ),
]
WORKER_TRACE = [
    plain(
        CONSUMER,
        4,
        "invoke_agent worker",
        **attrs({"gen_ai.operation.name": "invoke_agent"}),
        **attrs({"gen_ai.agent.name": "worker", "session.id": "conv-1"}),
    ),
    plain(
        CONSUMER,
        5,
        "process tasks",
        4,
        **QUEUE,
        **{"messaging.operation.type": "process", "messaging.message.id": "m-1"},
        **{"session.id": "conv-1"},
    ),
]


@pytest.mark.parametrize("split", ["batched", "children-first"])
def test_messaging_ends_and_step_agents_do_not_depend_on_the_split(
    client: Client, project_with_key: tuple[Project, str], split: str
) -> None:
    _, key = project_with_key
    spans = PLANNER_TRACE + WORKER_TRACE
    requests = [spans] if split == "batched" else [[s] for s in reversed(spans)]
    for request in requests:
        post(client, key, body(*request))

    assert list(Message.objects.values_list("message_id", "sender", "receivers")) == [
        ("m-1", "planner", ["worker"])
    ]
    assert list(Step.objects.values_list("name", "agent_external_id")) == [("plan", "planner")]
