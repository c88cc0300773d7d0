"""OTLP/HTTP parsing of other instrumentations than agentops (ingest/formats/otlp.py), without a
database: the OTLP/JSON fixtures in tests/fixtures/otlp are hand-written from the OpenInference,
Traceloop, GenAI and TaskWeaver conventions; and sessions that span several traces.
"""

from __future__ import annotations

from ingest.formats.otlp_wire import DEFAULT_SESSION_ATTRIBUTES
from ingest.formats.records import (
    AgentRecord,
    SpanRecord,
    TraceLinkRecord,
    TranscriptRecord,
)
from tests.ingest.otlp_fixtures import (
    parse_fixture,
    parse_raw,
    records_of,
    session_record,
    span_named,
)

# --- other instrumentations ---------------------------------------------------------------------


def test_openinference_spans_map_to_llm_tool_and_agent() -> None:
    result = parse_fixture("openinference-agent.json")

    assert result.errors == []
    first, tool, second, agent_span = records_of(result, SpanRecord)
    assert (first.kind, first.model, first.provider) == ("llm", "gpt-4o-2024-08-06", "openai")
    assert (first.prompt_tokens, first.completion_tokens, first.is_cost_missing) == (52, 17, True)
    assert first.prompt == [
        {"role": "system", "content": "You answer weather questions."},
        {"role": "user", "content": "What's the weather in Paris?"},
    ]
    assert first.completion == {
        "role": "assistant",
        "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'}],
    }
    assert first.params["temperature"] == 0
    assert first.params["tools"] == [{"type": "function", "function": {"name": "get_weather"}}]
    assert first.unmapped_keys == ("llm.openai.organization",)
    assert (tool.kind, tool.name, tool.params, tool.returns) == (
        "tool",
        "get_weather",
        {"city": "Paris"},
        "sunny, 21C",
    )
    assert (second.cost, second.is_cost_missing) == (0.00029, False)
    assert second.prompt == [{"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}]
    assert (agent_span.kind, agent_span.attributes["observatory.kind"]) == ("action", "agent")
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "weather-agent"
    assert {first.agent_id, tool.agent_id, second.agent_id} == {agent.agent_id}
    orphan_root = session_record(result, "update")
    assert orphan_root.tags == ("no-session-span", "demo", "weather")


def test_traceloop_spans_map_to_workflow_agent_tool_task_and_llm() -> None:
    result = parse_fixture("traceloop-workflow.json")

    kinds = {
        s.name: (s.kind, s.attributes["observatory.kind"]) for s in records_of(result, SpanRecord)
    }
    assert kinds == {
        "plan_trip": ("action", "workflow"),
        "travel_agent": ("action", "agent"),
        "lookup_weather": ("tool", "tool"),
        "openai.chat": ("llm", "llm"),
        "openai.completion": ("llm", "llm"),
        "summarize": ("action", "task"),
    }
    workflow = span_named(result, "plan_trip")
    assert workflow.params == {"args": ["Lisbon"], "kwargs": {}}
    assert workflow.returns == "Pack sunscreen: Lisbon is sunny."
    tool = span_named(result, "lookup_weather")
    assert (tool.params, tool.returns) == (
        {"args": [], "kwargs": {"city": "Lisbon"}},
        {"forecast": "sunny"},
    )
    chat = span_named(result, "openai.chat")
    assert (chat.model, chat.prompt_tokens, chat.completion_tokens) == (
        "gpt-4o-mini-2024-07-18",
        20,
        10,
    )
    legacy = span_named(result, "openai.completion")
    assert (legacy.model, legacy.prompt_tokens, legacy.completion_tokens) == (
        "gpt-3.5-turbo-instruct",
        8,
        3,
    )
    assert legacy.prompt == [{"role": "user", "content": "Summarise: Pack sunscreen."}]
    assert legacy.completion == {"role": "assistant", "content": "Sunscreen."}
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "travel_agent"
    assert chat.agent_id == agent.agent_id


def test_genai_new_generation_messages_and_input_output_tokens() -> None:
    result = parse_fixture("genai-messages.json")

    first, second = [s for s in records_of(result, SpanRecord) if s.kind == "llm" and s.completion]
    assert (first.model, first.provider) == ("gpt-4.1-2025-04-14", "openai")
    assert (first.prompt_tokens, first.completion_tokens) == (97, 52)
    assert first.prompt == [
        {"role": "system", "content": "You are a travel agent."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert first.completion == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_VSPygqKTWdrhaFErNvMV18Yl",
                "name": "get_weather",
                "arguments": {"location": "Paris"},
            }
        ],
        "finish_reason": "tool_call",
    }
    assert second.prompt[2] == {
        "role": "tool",
        "tool_call_id": "call_VSPygqKTWdrhaFErNvMV18Yl",
        "content": '{"temperature_c":21,"sky":"clear"}',
    }
    assert second.completion["content"] == "Clear skies and 21C in Paris."
    assert second.completion["other_choices"] == [
        {"role": "assistant", "content": "Paris: 21C, clear.", "finish_reason": "stop"}
    ]
    tool = span_named(result, "get_weather")
    assert (tool.kind, tool.params, tool.returns) == (
        "tool",
        {"location": "Paris"},
        {"temperature_c": 21, "sky": "clear"},
    )
    (agent,) = records_of(result, AgentRecord)
    assert agent.name == "Travel planner"


def test_an_error_status_without_exception_events_is_one_error_span() -> None:
    result = parse_fixture("genai-messages.json")

    (error,) = [s for s in records_of(result, SpanRecord) if s.kind == "error"]
    assert error.span_id == "4444444444444444-error-1"
    assert (error.error_type, error.error_message) == (
        "RateLimitError",
        "Rate limit reached for gpt-4.1",
    )
    failed = [s for s in records_of(result, SpanRecord) if s.span_id == "4444444444444444"]
    assert failed[0].status == "error"


# --- sessions that span several traces ---------------------------------------------------------


def test_taskweaver_rounds_in_two_traces_link_to_one_session_in_order() -> None:
    first = parse_fixture("taskweaver-round-1.json")
    second = parse_fixture("taskweaver-round-2.json")

    links = records_of(first, TraceLinkRecord) + records_of(second, TraceLinkRecord)
    assert [(link.trace_id, link.session_id, link.round_index) for link in links] == [
        ("6f1c2b3a4d5e6f708192a3b4c5d6e7f8", "20261121-202000-7c1e", 0),
        ("7a2d3c4b5e6f708192a3b4c5d6e7f809", "20261121-202000-7c1e", 1),
    ]
    lines = records_of(first, TranscriptRecord) + records_of(second, TranscriptRecord)
    assert [(line.role, line.text) for line in lines] == [
        ("user", "Plot sales.csv"),
        ("assistant", "Here is the plot of sales.csv."),
        ("user", "Now as a bar chart"),
        ("assistant", "Here is the bar chart."),
    ]
    assert [line.at for line in lines] == sorted(line.at for line in lines)
    assert lines[0].session_id == lines[0].trace_id == "6f1c2b3a4d5e6f708192a3b4c5d6e7f8"
    assert lines[0].span_id == "aa00000000000001"


def test_a_configured_session_attribute_is_checked_before_the_defaults() -> None:
    result = parse_fixture("taskweaver-round-1.json", session_attributes=("round_id",))

    (link,) = records_of(result, TraceLinkRecord)
    assert link.session_id == "round-20261121-202000-9f3c"
    assert DEFAULT_SESSION_ATTRIBUTES == ("session.id", "session_id", "gen_ai.conversation.id")


def test_openinference_and_genai_session_ids_link_their_trace() -> None:
    (openinference,) = records_of(parse_fixture("openinference-agent.json"), TraceLinkRecord)
    (genai,) = records_of(parse_fixture("genai-messages.json"), TraceLinkRecord)

    assert (openinference.session_id, openinference.round_index) == ("conv-42", None)
    assert genai.session_id == "thread-7"


def test_traces_without_a_session_attribute_get_no_link() -> None:
    assert records_of(parse_raw("008-POST-v1_traces.bin"), TraceLinkRecord) == []
