"""Span classification and attribute mapping (ingest/formats/semconv.py): plain dicts in, no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ingest.formats.semconv import bare_agent_type, describe_span, detail_kind
from ingest.formats.semconv_sessions import normalize_end_state, parse_tags, session_fields


def kinds(name: str, attributes: dict[str, Any]) -> tuple[str, str]:
    meaning = describe_span(name, attributes)
    return meaning.kind, meaning.detail


# --- classification ---------------------------------------------------------------------------


def test_llm_calls_are_recognised_from_gen_ai_attributes_without_a_kind() -> None:
    assert kinds("openai.chat.completion", {"gen_ai.request.model": "gpt-4o-mini"}) == (
        "llm",
        "llm",
    )
    assert kinds("anthropic.messages.create", {"gen_ai.prompt.0.content": "hi"}) == ("llm", "llm")
    assert kinds("x", {"gen_ai.usage.input_tokens": 3}) == ("llm", "llm")


def test_gen_ai_system_alone_is_not_an_llm_call() -> None:
    """mem0 memory operations set gen_ai.system too."""
    assert kinds("mem0.add", {"gen_ai.system": "Mem0"}) == ("action", "span")


def test_an_agentops_tool_span_with_a_cost_is_a_tool_not_an_llm() -> None:
    attributes = {"agentops.span.kind": "tool", "gen_ai.usage.total_cost": 0.01}

    meaning = describe_span("get_weather.tool", attributes)

    assert (meaning.kind, meaning.cost, meaning.is_cost_missing) == ("tool", 0.01, False)


def test_tool_call_spans_are_requests_the_model_made() -> None:
    attributes = {
        "tool.name": "get_weather",
        "tool.parameters": '{"city": "Paris"}',
        "tool.call.id": "c1",
    }

    meaning = describe_span("tool_call.get_weather", attributes)

    assert (meaning.kind, meaning.detail, meaning.name) == (
        "tool",
        "tool_call_request",
        "get_weather",
    )
    assert meaning.tool_call == {
        "id": "c1",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert meaning.params == {"city": "Paris"}
    assert detail_kind("tool_call.lookup", {}) == "tool_call_request"


@pytest.mark.parametrize(
    ("agentops_kind", "expected"),
    [
        ("session", ("action", "session")),
        ("workflow", ("action", "workflow")),
        ("agent", ("action", "trace")),
        ("task", ("action", "task")),
        ("guardrail", ("action", "guardrail")),
        ("http", ("action", "http")),
        ("tool", ("tool", "tool")),
        ("tool.usage", ("tool", "tool")),
        ("llm", ("llm", "llm")),
        ("workflow.step", ("action", "workflow.step")),
    ],
)
def test_agentops_kinds_map_to_ours(agentops_kind: str, expected: tuple[str, str]) -> None:
    assert kinds("x", {"agentops.span.kind": agentops_kind}) == expected


def test_an_unknown_agentops_kind_with_gen_ai_markers_is_an_llm_call() -> None:
    attributes = {"agentops.span.kind": "unknown", "gen_ai.request.model": "gpt-4o"}

    assert kinds("x", attributes) == ("llm", "llm")


@pytest.mark.parametrize(
    ("openinference_kind", "expected"),
    [
        ("LLM", ("llm", "llm")),
        ("EMBEDDING", ("llm", "embedding")),
        ("TOOL", ("tool", "tool")),
        ("AGENT", ("action", "trace")),
        ("CHAIN", ("action", "chain")),
        ("RETRIEVER", ("action", "retriever")),
        ("RERANKER", ("action", "reranker")),
        ("GUARDRAIL", ("action", "guardrail")),
        ("EVALUATOR", ("action", "evaluator")),
        ("llm", ("llm", "llm")),
    ],
)
def test_openinference_kinds_map_to_ours(
    openinference_kind: str, expected: tuple[str, str]
) -> None:
    assert kinds("x", {"openinference.span.kind": openinference_kind}) == expected


@pytest.mark.parametrize(
    ("traceloop_kind", "expected"),
    [
        ("workflow", ("action", "workflow")),
        ("task", ("action", "task")),
        ("agent", ("action", "trace")),
        ("tool", ("tool", "tool")),
    ],
)
def test_traceloop_kinds_map_to_ours(traceloop_kind: str, expected: tuple[str, str]) -> None:
    assert kinds("x", {"traceloop.span.kind": traceloop_kind}) == expected


@pytest.mark.parametrize(
    ("operation", "expected"),
    [
        ("chat", ("llm", "llm")),
        ("text_completion", ("llm", "llm")),
        ("generate_content", ("llm", "llm")),
        ("embeddings", ("llm", "embedding")),
        ("execute_tool", ("tool", "tool")),
        ("invoke_agent", ("action", "trace")),
        ("create_agent", ("action", "trace")),
    ],
)
def test_gen_ai_operation_names_map_to_ours(operation: str, expected: tuple[str, str]) -> None:
    assert kinds("x", {"gen_ai.operation.name": operation}) == expected


def test_embedding_requests_are_llm_calls_of_the_embedding_kind() -> None:
    attributes = {
        "gen_ai.request.type": "embedding",
        "gen_ai.request.model": "text-embedding-3-small",
    }

    assert kinds("openai.embeddings", attributes) == ("llm", "embedding")


def test_a_span_nobody_describes_is_a_plain_action() -> None:
    meaning = describe_span("GET /health", {"http.method": "GET"})

    assert (meaning.kind, meaning.detail, meaning.name) == ("action", "span", "GET /health")
    assert meaning.unmapped_keys == ("http.method",)


# --- fields -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt_key", "completion_key"),
    [
        ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens"),
        ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"),
        ("llm.token_count.prompt", "llm.token_count.completion"),
        ("llm.usage.prompt_tokens", "llm.usage.completion_tokens"),
    ],
)
def test_token_counts_are_read_in_every_form(prompt_key: str, completion_key: str) -> None:
    attributes = {"gen_ai.request.model": "m", prompt_key: 12, completion_key: "5"}

    meaning = describe_span("chat", attributes)

    assert (meaning.prompt_tokens, meaning.completion_tokens) == (12, 5)
    assert meaning.is_cost_missing is True


@pytest.mark.parametrize("bad", [-1, 1.5, "many", True, 2**40])
def test_unusable_token_counts_are_left_out(bad: Any) -> None:
    meaning = describe_span(
        "chat", {"gen_ai.request.model": "m", "gen_ai.usage.prompt_tokens": bad}
    )

    assert meaning.prompt_tokens is None
    assert meaning.is_cost_missing is False


@pytest.mark.parametrize(
    ("attributes", "cost"),
    [
        ({"gen_ai.usage.total_cost": 0.5, "gen_ai.usage.prompt_cost": 9}, 0.5),
        ({"gen_ai.usage.prompt_cost": 0.25, "gen_ai.usage.completion_cost": 0.5}, 0.75),
        ({"gen_ai.usage.completion_cost": "0.5"}, 0.5),
        ({"llm.cost.total": 0.125}, 0.125),
        ({"llm.cost.prompt": 0.125, "llm.cost.completion": 0.125}, 0.25),
    ],
)
def test_cost_is_total_cost_or_prompt_plus_completion_cost(
    attributes: dict[str, Any], cost: float
) -> None:
    meaning = describe_span(
        "chat", {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 3, **attributes}
    )

    assert (meaning.cost, meaning.is_cost_missing) == (cost, False)


def test_the_response_model_is_preferred_for_pricing() -> None:
    attributes = {
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    }

    assert describe_span("chat", attributes).model == "gpt-4o-mini-2024-07-18"
    assert (
        describe_span("chat", {"llm.model_name": "claude-3-5-sonnet"}).model == "claude-3-5-sonnet"
    )


def test_provider_comes_from_whichever_convention_names_it() -> None:
    assert (
        describe_span("c", {"gen_ai.request.model": "m", "gen_ai.provider.name": "openai"}).provider
        == "openai"
    )
    assert (
        describe_span("c", {"gen_ai.request.model": "m", "gen_ai.system": "Anthropic"}).provider
        == "Anthropic"
    )
    assert (
        describe_span("c", {"openinference.span.kind": "LLM", "llm.provider": "azure"}).provider
        == "azure"
    )


def test_openinference_messages_with_content_parts_and_tool_calls() -> None:
    prefix = "llm.input_messages"
    attributes = {
        "openinference.span.kind": "LLM",
        f"{prefix}.0.message.role": "user",
        f"{prefix}.0.message.contents.0.message_content.type": "text",
        f"{prefix}.0.message.contents.0.message_content.text": "Describe",
        f"{prefix}.0.message.contents.1.message_content.type": "image",
        f"{prefix}.0.message.contents.1.message_content.image.image.url": "https://example.invalid/cat.png",
        f"{prefix}.1.message.role": "assistant",
        f"{prefix}.1.message.tool_calls.0.tool_call.id": "call_1",
        f"{prefix}.1.message.tool_calls.0.tool_call.function.name": "zoom",
        f"{prefix}.1.message.tool_calls.0.tool_call.function.arguments": '{"x": 2}',
    }

    prompt = describe_span("ChatCompletion", attributes).prompt

    assert prompt == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image", "image.image.url": "https://example.invalid/cat.png"},
            ],
        },
        {
            "role": "assistant",
            "tool_calls": [{"id": "call_1", "name": "zoom", "arguments": '{"x": 2}'}],
        },
    ]


def test_new_generation_messages_with_system_instructions_and_several_choices() -> None:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": "Be brief."}]),
        "gen_ai.input.messages": json.dumps(
            [
                {
                    "role": "user",
                    "parts": [{"type": "text", "content": "Hi"}, {"type": "uri", "uri": "s3://x"}],
                }
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Hello"}],
                    "finish_reason": "stop",
                },
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Hey"}],
                    "finish_reason": "length",
                },
            ]
        ),
    }

    meaning = describe_span("chat", attributes)

    assert meaning.prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi", "parts": [{"type": "uri", "uri": "s3://x"}]},
    ]
    assert meaning.completion == {
        "role": "assistant",
        "content": "Hello",
        "finish_reason": "stop",
        "other_choices": [{"role": "assistant", "content": "Hey", "finish_reason": "length"}],
    }


def test_messages_that_are_not_json_fall_back_to_the_raw_input_and_output() -> None:
    attributes = {
        "openinference.span.kind": "LLM",
        "gen_ai.input.messages": "not json",
        "input.value": "plain question",
        "output.value": '{"answer": 42}',
    }

    meaning = describe_span("llm", attributes)

    assert (meaning.prompt, meaning.completion) == ("plain question", {"answer": 42})


def test_llm_params_are_the_request_parameters_without_the_model() -> None:
    attributes = {
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.functions.0.name": "get_weather",
        "gen_ai.request.functions.0.parameters": '{"type": "object"}',
        "gen_ai.system": "OpenAI",
    }

    assert describe_span("chat", attributes).params == {
        "temperature": 0.2,
        "functions": [{"name": "get_weather", "parameters": {"type": "object"}}],
        "system": "OpenAI",
    }


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ('{"args": [1], "kwargs": {}}', {"args": [1], "kwargs": {}}),
        ("42", 42),
        ("Paris: sunny", "Paris: sunny"),
        ('{"broken": ', '{"broken": '),
    ],
)
def test_inputs_and_outputs_are_parsed_json_when_possible(value: str, parsed: Any) -> None:
    meaning = describe_span("t", {"agentops.span.kind": "task", "agentops.task.output": value})

    assert meaning.returns == parsed


def test_unmapped_keys_are_the_ones_no_rule_reads() -> None:
    attributes = {
        "agentops.span.kind": "task",
        "operation.name": "answer",
        "agentops.task.input": "{}",
        "trace.metadata.customer": "acme",
        "custom.flag": True,
        "another": 1,
    }

    assert describe_span("answer.task", attributes).unmapped_keys == ("another", "custom.flag")


def test_a_session_root_has_no_unmapped_keys_because_all_land_in_the_session() -> None:
    meaning = describe_span("s.session", {"agentops.span.kind": "session", "env": "test"})

    assert (meaning.name, meaning.unmapped_keys) == ("s", ())


# --- sessions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        (["a", "b", "a"], ("a", "b")),
        ('["x", "y"]', ("x", "y")),
        ("single", ("single",)),
        ('{"env": "test"}', ()),
        (None, ()),
        ([1, None, ""], ("1",)),
    ],
)
def test_tags_are_read_as_an_array_or_a_json_string(value: Any, tags: tuple[str, ...]) -> None:
    assert parse_tags(value) == tags


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("Success", "success"),
        ("OK", "success"),
        ("Error", "fail"),
        ("Fail", "fail"),
        ("failure", "fail"),
        ("Indeterminate", "indeterminate"),
        ("Shutdown", "indeterminate"),
        ("Reinitialized", "indeterminate"),
        (None, "indeterminate"),
    ],
)
def test_end_states_are_normalised(raw: Any, state: str) -> None:
    assert normalize_end_state(raw) == state


def test_session_fields_gather_metadata_host_env_and_reason() -> None:
    attributes = {
        "agentops.span.kind": "session",
        "operation.name": "nightly",
        "agentops.tags": '["a"]',
        "agentops.session.end_state": "Fail",
        "agentops.legacy.end_state_reason": "crashed",
        "agentops.legacy.video": "v.mp4",
        "trace.metadata.customer": "acme",
        "env": "prod",
        "host.name": "vm",
        "cpu.count": 2,
        "memory.percent": 4.3,
    }

    fields = session_fields("nightly.session", attributes, {"service.name": "agentops", "other": 1})

    assert (fields.name, fields.tags, fields.end_state, fields.end_state_reason) == (
        "nightly",
        ("a",),
        "fail",
        "crashed",
    )
    assert fields.metadata == {
        "video": "v.mp4",
        "customer": "acme",
        "env": "prod",
        "host_env": {
            "host.name": "vm",
            "cpu.count": 2,
            "memory.percent": 4.3,
            "service.name": "agentops",
        },
        "end_state_raw": "Fail",
    }


def test_a_session_without_operation_name_is_named_after_its_span() -> None:
    fields = session_fields("probe.session", {"agentops.span.kind": "session"}, {})

    assert (fields.name, fields.end_state, fields.metadata) == ("probe", "indeterminate", {})


# An agent span is an agent only when the framework names the agent; the span name is never
# the name (a nameless agent span, as OpenAI Agents' trace() root, is a tracing wrapper).
@pytest.mark.parametrize(
    ("span_name", "attributes", "expected"),
    [
        (
            "invoke_agent planner",
            {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "planner"},
            "planner",
        ),
        (
            "billing_agent",
            {
                "openinference.span.kind": "AGENT",
                "agent.name": "billing_agent",
                "graph.node.id": "billing_agent",
            },
            "billing_agent",
        ),
        (
            "Researcher._execute_core",
            {"openinference.span.kind": "AGENT", "graph.node.id": "Researcher"},
            "Researcher",
        ),
        (
            "researcher.run",
            {"openinference.span.kind": "AGENT", "smolagents.max_steps": 3},
            "researcher",
        ),
        (
            "create_agent researcher",
            {
                "gen_ai.operation.name": "create_agent",
                "gen_ai.agent.id": "researcher_d2363924-0b7e-4b53-a1c1-2f1e0e1a8c11/d2363924-0b7e-4b53-a1c1-2f1e0e1a8c11",
            },
            "researcher",
        ),
    ],
)
def test_agents_are_named_by_what_the_framework_says(
    span_name: str, attributes: dict[str, object], expected: str
) -> None:
    meaning = describe_span(span_name, attributes)

    assert (meaning.detail, meaning.name) == ("agent", expected)


def test_a_nameless_agent_span_is_a_tracing_wrapper_not_an_agent() -> None:
    meaning = describe_span("Billing support", {"openinference.span.kind": "AGENT"})

    assert (meaning.detail, meaning.name) == ("trace", "Billing support")


def test_autogen_agent_types_lose_their_team_uuid() -> None:
    assert bare_agent_type("researcher_d2363924-0b7e-4b53-a1c1-2f1e0e1a8c11") == "researcher"
    assert bare_agent_type("writer") == "writer"


def test_a_framework_reported_cost_is_taken_and_not_estimated() -> None:
    meaning = describe_span(
        "chat gpt-4o-mini",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 10,
            "operation.cost": 3.585e-05,
        },
    )

    assert (meaning.cost, meaning.is_cost_missing) == (3.585e-05, False)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        (
            {"gen_ai.response.finish_reasons": ["tool_call"], "gen_ai.response.id": "chatcmpl-1"},
            (("tool_call",), "chatcmpl-1"),
        ),
        ({"llm.model_name": "gpt-4o", "llm.finish_reason": "stop"}, (("stop",), "")),
        ({"llm.model_name": "gpt-4o"}, ((), "")),
    ],
)
def test_finish_reasons_and_response_ids_of_llm_calls(
    attributes: dict[str, object], expected: tuple[tuple[str, ...], str]
) -> None:
    meaning = describe_span("chat", {"gen_ai.operation.name": "chat", **attributes})

    assert (meaning.finish_reasons, meaning.response_id) == expected
