"""OTLP spans into messages, workflows and steps (ingest/formats/otlp_flows.py), parsed without
a database, then posted to /v1/traces to see the rows a user gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.test import Client

from ingest.formats.otlp import parse_otlp_traces
from ingest.formats.records import AgentMessageRecord, ParseResult, StepRecord, WorkflowRecord
from ingest.formats.semconv_rules import BUILTIN_MESSAGE_RULES, MessageRule
from ingest.models import Message, MessageMappingRule, Project, Step, Workflow

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "otlp" / "messaging-workflow.json"
TRACE = "7a" * 16
RELAY_RULE = MessageRule(
    name="relay",
    sender_attribute="relay.source",
    receiver_attribute="relay.target",
    content_attribute="relay.text",
    channel_attribute="relay.topic",
)


def parse(rules: tuple[MessageRule, ...] = BUILTIN_MESSAGE_RULES) -> ParseResult:
    return parse_otlp_traces(
        FIXTURE.read_bytes(), "application/json", max_string_chars=10_000, message_rules=rules
    )


def messages(result: ParseResult) -> list[AgentMessageRecord]:
    return [r for _, r in result.records if isinstance(r, AgentMessageRecord)]


def test_messaging_spans_become_lifecycle_records_found_through_span_links() -> None:
    found = [(m.message_id, m.stage, m.sender, m.receivers, m.channel) for m in messages(parse())]
    assert found[:5] == [
        ("msg-1", "sent", "planner", None, "tasks"),
        ("msg-1", "received", None, ("coder",), "tasks"),
        ("msg-1", "processed", None, None, None),
        ("msg-2", "received", None, ("reviewer",), "reviews"),
        ("msg-2", "failed", None, None, None),
    ]
    failed = messages(parse())[4]
    assert (failed.error_type, failed.error_message) == ("ConnectionError", "reviewer unreachable")
    assert messages(parse())[0].content_size == 42


def test_taskweaver_posts_become_messages_with_their_text() -> None:
    posts = [m for m in messages(parse()) if m.record_id.startswith("otlp-rule:")]
    assert [(m.stage, m.sender, m.receivers) for m in posts] == [
        ("sent", "User", ("Planner",)),
        ("processed", None, None),
        ("sent", "Planner", ("CodeInterpreter",)),
        ("processed", None, None),
    ]
    assert posts[0].content == "<script>alert(1)</script> plot the data"
    assert posts[0].message_id == "b000000000000002"


def test_a_project_rule_maps_its_own_attributes_and_no_rule_no_message() -> None:
    relayed = [m for m in messages(parse((RELAY_RULE,))) if m.sender == "CodeInterpreter"]
    assert [(m.receivers, m.channel, m.content) for m in relayed] == [
        (("Planner",), "results", "plot saved")
    ]
    assert not [m for m in messages(parse(())) if m.record_id.startswith("otlp-rule:")]


def test_workflow_and_task_spans_become_a_run_with_steps_and_dependencies() -> None:
    result = parse()
    runs = [r for _, r in result.records if isinstance(r, WorkflowRecord)]
    assert [(r.action, r.workflow_id, r.name, r.status) for r in runs] == [
        ("start", "a000000000000001", "research crew", None),
        ("end", "a000000000000001", None, "success"),
    ]
    steps = [r for _, r in result.records if isinstance(r, StepRecord)]
    starts = {s.step_id: s for s in steps if s.action == "start"}
    assert starts["a000000000000003"].depends_on == ("a000000000000002",)
    assert (starts["a000000000000002"].name, starts["a000000000000002"].agent_id) == (
        "research",
        "planner",
    )
    ends = {s.step_id: s for s in steps if s.action == "end"}
    assert (ends["a000000000000003"].status, ends["a000000000000003"].error_message) == (
        "error",
        "writer crashed",
    )


@pytest.mark.django_db
def test_posting_the_spans_stores_merged_messages_a_workflow_and_rule_messages(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    project, key = project_with_key
    MessageMappingRule.objects.create(
        project=project,
        name="relay",
        sender_attribute="relay.source",
        receiver_attribute="relay.target",
        content_attribute="relay.text",
    )
    response = client.post(
        "/v1/traces",
        data=FIXTURE.read_bytes(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200
    one = Message.objects.get(message_id="msg-1")
    assert (one.sender, one.receivers, one.status, one.session.external_id) == (
        "planner",
        ["coder"],
        "processed",
        "crew-1",
    )
    assert one.processing_ms == 1500
    assert Message.objects.get(message_id="msg-2").dead_letter_state == "open"
    posts = Message.objects.filter(session__external_id="tw-session").order_by("started_at")
    assert [(m.sender, m.receivers) for m in posts] == [
        ("User", ["Planner"]),
        ("Planner", ["CodeInterpreter"]),
        ("CodeInterpreter", ["Planner"]),
    ]
    assert posts[0].body.content is not None
    assert posts[0].body.content.startswith("<script>")
    workflow = Workflow.objects.get()
    assert (workflow.name, workflow.status, workflow.session.external_id) == (
        "research crew",
        "success",
        "crew-1",
    )
    write = Step.objects.get(name="write")
    assert (write.status, write.depends_on, write.agent_external_id) == (
        "error",
        ["a000000000000002"],
        "coder",
    )
    again = client.post(
        "/v1/traces",
        data=FIXTURE.read_bytes(),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert again.status_code == 200
    assert Message.objects.count() == 5
    assert json.loads(FIXTURE.read_text())["resourceSpans"]  # the fixture is plain OTLP/JSON
