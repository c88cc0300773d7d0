"""The failure detectors on healthy sessions from each ingest path (native, agentops, OTLP with
and without message content) raise no false flag, and a session that never answered is flagged."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from analytics.models import SessionFlag
from analytics.refresh import detect_session_failures
from ingest.models import Message, Project, Session, Span

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
T0_NS = 1795290000 * 10**9  # 2026-11-21 19:40 UTC


def judge_all() -> dict[str, set[str]]:
    """Run the detectors over every session; flags by session external id."""
    detect_session_failures(list(Session.objects.values_list("pk", flat=True)))
    found: dict[str, set[str]] = {}
    for external_id, detector in SessionFlag.objects.values_list(
        "session__external_id", "detector"
    ):
        found.setdefault(external_id, set()).add(detector)
    return found


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
        }
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def genai_span(span_id: str, name: str, offset_ms: int, attributes: list[Any], **extra: Any) -> Any:
    return {
        "traceId": "5bf92f3577b34da6a3ce929d0e0e4736",
        "spanId": span_id,
        "name": name,
        "kind": "SPAN_KIND_CLIENT",
        "startTimeUnixNano": str(T0_NS + offset_ms * 10**6),
        "endTimeUnixNano": str(T0_NS + (offset_ms + 800) * 10**6),
        "attributes": attributes,
        **extra,
    }


def content_free_chat(conversation: str, *, output_tokens: int, reasons: list[str]) -> bytes:
    """A GenAI chat call as instrumentations send it by default: no prompt, no completion."""
    attributes = [
        attr("gen_ai.operation.name", "chat"),
        attr("gen_ai.provider.name", "openai"),
        attr("gen_ai.request.model", "gpt-4.1"),
        attr("gen_ai.usage.input_tokens", 80),
        attr("gen_ai.usage.output_tokens", output_tokens),
        attr("gen_ai.response.finish_reasons", reasons),
        attr("gen_ai.conversation.id", conversation),
    ]
    spans = [genai_span("2222222222222222", "chat gpt-4.1", 10, attributes)]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", "travel")]},
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.openai"}, "spans": spans}
                ],
            }
        ]
    }
    return json.dumps(body).encode()


def post_otlp(client: Client, key: str, body: bytes) -> None:
    answer = client.post(
        "/v1/traces", body, content_type="application/json", headers={"X-API-Key": key}
    )
    assert answer.status_code == 200, answer.content


def test_a_content_free_otlp_chat_that_produced_tokens_has_a_final_answer(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post_otlp(client, key, content_free_chat("thread-1", output_tokens=40, reasons=["stop"]))
    post_otlp(client, key, content_free_chat("thread-2", output_tokens=0, reasons=["end_turn"]))
    assert Span.objects.filter(kind="llm", payload__completion__isnull=True).count() == 2

    assert judge_all() == {}


def test_a_content_free_otlp_chat_with_no_output_and_no_stop_has_no_final_answer(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post_otlp(client, key, content_free_chat("thread-9", output_tokens=0, reasons=["length"]))

    assert judge_all() == {"thread-9": {"no_final_answer"}}


def test_otlp_genai_spans_with_content_raise_no_flag(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post_otlp(client, key, (FIXTURES / "otlp" / "genai-messages.json").read_bytes())
    assert Session.objects.exists()

    assert judge_all() == {}


def test_otlp_messaging_spans_of_a_healthy_workflow_raise_no_flag(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    post_otlp(client, key, (FIXTURES / "otlp" / "messaging-workflow.json").read_bytes())
    assert Message.objects.exists()

    assert judge_all() == {}


def native_session(session_id: str) -> list[dict[str, Any]]:
    """A native batch whose LLM call reports tokens but no completion text."""
    return [
        {
            "type": "session.start",
            "id": f"{session_id}-start",
            "session_id": session_id,
            "started_at": "2026-11-21T10:00:00Z",
        },
        {
            "type": "message",
            "id": f"{session_id}-m",
            "session_id": session_id,
            "role": "user",
            "content": "Plan a trip",
            "at": "2026-11-21T10:00:00.5Z",
        },
        {
            "type": "event",
            "id": f"{session_id}-e1",
            "session_id": session_id,
            "kind": "llm",
            "name": "openai.chat",
            "model": "gpt-4o",
            "started_at": "2026-11-21T10:00:01Z",
            "ended_at": "2026-11-21T10:00:02Z",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "status": "ok",
        },
        {
            "type": "session.end",
            "id": f"{session_id}-end",
            "session_id": session_id,
            "ended_at": "2026-11-21T10:00:05Z",
            "end_state": "success",
        },
    ]


def test_a_native_session_whose_llm_call_reported_tokens_raises_no_flag(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    answer = client.post(
        "/api/v1/ingest",
        data=json.dumps({"records": native_session("n1")}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert answer.status_code == 200, answer.content

    assert judge_all() == {}


def test_healthy_agentops_sessions_raise_no_flag_of_any_detector(
    client: Client, project_with_key: tuple[Project, str]
) -> None:
    _, key = project_with_key
    replay_agentops(client, key)
    answered = set(
        Span.objects.filter(kind="llm", completion_tokens__gt=0).values_list(
            "session__external_id", flat=True
        )
    )
    assert answered

    assert judge_all() == {}


def replay_agentops(client: Client, key: str) -> None:
    """Send every observatory-bound request of the captured agentops 0.4 run, as it was sent."""
    folder = FIXTURES / "agentops"
    token = client.post("/v3/auth/token", {"api_key": key}, content_type="application/json")
    headers = {"Authorization": f"Bearer {token.json()['token']}"}
    for line in (folder / "capture-main.jsonl").open():
        request = json.loads(line)
        if request["method"] != "POST" or request["path"] == "/v3/auth/token":
            continue
        if request["path"].startswith("/fake-openai"):
            continue
        extra = (
            {"Trace-Id": request["headers"]["Trace-Id"]} if "Trace-Id" in request["headers"] else {}
        )
        body = (folder / "raw-main" / request["raw_file"]).read_bytes()
        content_type = request["headers"].get("Content-Type", "application/json")
        answer = client.post(
            request["path"], body, content_type=content_type, headers={**headers, **extra}
        )
        assert answer.status_code == 200, answer.content


TEAM = "0b7c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"  # an AutoGen team uuid: agent types end with it


def ping_pong_spans(style: str, turns: int) -> bytes:
    """Billing and shipping handing one conversation back and forth `turns` times, sent as
    messaging spans: OpenTelemetry semconv (a send span of the sender, a linked process span of
    the receiver) or AutoGen's runtime (process spans naming sender and recipient agent types,
    the older `messaging.operation` keys); then billing answers (content-free chat)."""
    root = genai_span(
        "1000000000000000",
        "invoke_agent billing",
        0,
        [
            attr("gen_ai.operation.name", "invoke_agent"),
            attr("gen_ai.agent.name", "billing"),
            attr("gen_ai.conversation.id", f"pp-{style}"),
        ],
        kind="SPAN_KIND_INTERNAL",
    )
    spans = [root]
    for turn in range(turns):
        sender, receiver = ("billing", "shipping") if turn % 2 == 0 else ("shipping", "billing")
        send_id, process_id = f"2{turn:015x}", f"3{turn:015x}"
        common = {"parentSpanId": root["spanId"]}
        if style == "semconv":
            spans.append(
                genai_span(
                    send_id,
                    f"{receiver} send",
                    10 + turn * 20,
                    [
                        attr("messaging.system", "support-bus"),
                        attr("messaging.operation.type", "send"),
                        attr("messaging.destination.name", receiver),
                        attr("messaging.message.id", f"pp-m{turn}"),
                        attr("gen_ai.agent.name", sender),
                    ],
                    kind="SPAN_KIND_PRODUCER",
                    **common,
                )
            )
            process = [
                attr("messaging.system", "support-bus"),
                attr("messaging.operation.type", "process"),
                attr("messaging.destination.name", receiver),
                attr("messaging.message.id", f"pp-m{turn}"),
                attr("gen_ai.agent.name", receiver),
            ]
        else:
            # The runtime's send span links to the handler that sent it (the previous process
            # span), the process span to the send span; agent types carry the team's uuid.
            previous = [{"traceId": root["traceId"], "spanId": f"3{turn - 1:015x}"}]
            spans.append(
                genai_span(
                    send_id,
                    f"autogen send {receiver}_{TEAM}",
                    10 + turn * 20,
                    [
                        attr("messaging.operation", "publish"),
                        attr("messaging.destination", f"{receiver}_{TEAM}.({TEAM})-A"),
                    ],
                    kind="SPAN_KIND_PRODUCER",
                    links=previous if turn else [],
                    **common,
                )
            )
            context = {"sender": f"{sender}_{TEAM}/{TEAM}", "is_rpc": True, "message_id": turn}
            process = [
                attr("messaging.operation", "process"),
                attr("messaging.destination", f"{receiver}_{TEAM}.({TEAM})-A"),
                attr("sender_agent_type", f"{sender}_{TEAM}"),
                attr("recipient_agent_type", f"{receiver}_{TEAM}"),
                attr("message_context", json.dumps(context)),
            ]
        links = [{"traceId": root["traceId"], "spanId": send_id}]
        spans.append(
            genai_span(
                process_id,
                f"autogen process {receiver}_{TEAM}"
                if style == "autogen"
                else f"{receiver} process",
                15 + turn * 20,
                process,
                kind="SPAN_KIND_CONSUMER",
                links=links,
                **common,
            )
        )
    answer = content_free_chat(f"pp-{style}", output_tokens=40, reasons=["stop"])
    chat = json.loads(answer)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    chat["parentSpanId"] = root["spanId"]
    scope = "autogen SingleThreadedAgentRuntime" if style == "autogen" else "support-desk"
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", "support-desk")]},
                "scopeSpans": [{"scope": {"name": scope}, "spans": spans[1:]}],
            },
            {
                "resource": {"attributes": [attr("service.name", "support-desk")]},
                "scopeSpans": [{"scope": {"name": "support-desk"}, "spans": [root, chat]}],
            },
        ]
    }
    return json.dumps(body).encode()


@pytest.mark.parametrize("style", ["semconv", "autogen"])
def test_two_agents_alternating_twenty_messaging_spans_is_ping_pong(
    client: Client, project_with_key: tuple[Project, str], style: str
) -> None:
    _, key = project_with_key
    post_otlp(client, key, ping_pong_spans(style, 20))
    pairs = Counter(
        (s, tuple(r))
        for s, r in Message.objects.exclude(sender="").values_list("sender", "receivers")
    )
    assert pairs == {("billing", ("shipping",)): 10, ("shipping", ("billing",)): 10}

    assert judge_all() == {f"pp-{style}": {"ping_pong"}}


@pytest.mark.parametrize("style", ["semconv", "autogen"])
def test_a_short_exchange_of_messaging_spans_raises_no_flag(
    client: Client, project_with_key: tuple[Project, str], style: str
) -> None:
    _, key = project_with_key
    post_otlp(client, key, ping_pong_spans(style, 4))
    assert Message.objects.exclude(sender="").count() == 4

    assert judge_all() == {}
