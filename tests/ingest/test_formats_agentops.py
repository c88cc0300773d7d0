"""The agentops legacy v2 REST bodies and the 0.4 log upload (ingest/formats/agentops.py), tested
without a database: the captured 0.3.26 requests first, then the older event shapes of 0.2.x-0.3.18
described in docs/agentops-protocol.md section 6."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ingest.formats.agentops import (
    parse_agentops_log_upload,
    parse_v2_create_agent,
    parse_v2_create_events,
    parse_v2_create_session,
    parse_v2_reauthorize_jwt,
    parse_v2_update_session,
    trace_id_from_header,
)
from ingest.formats.records import (
    AgentRecord,
    BodyError,
    ParseResult,
    SessionRecord,
    SpanRecord,
    TranscriptRecord,
)

AGENTOPS = Path(__file__).resolve().parents[1] / "fixtures" / "agentops"
SESSION = "c4f9429f-eb6a-406c-a236-16da25af1e23"
AGENT = "e2e27d93-1595-47fc-b252-a7c0f33c8e48"
LIMIT = 10_000

R = TypeVar("R")


def legacy_bodies(path: str) -> list[bytes]:
    """The JSON bodies the 0.3.26 client sent to `path`, in order."""
    captures = [
        json.loads(line) for line in (AGENTOPS / "capture-legacy.jsonl").read_text().splitlines()
    ]
    return [json.dumps(c["body"]["json"]).encode() for c in captures if c["path"] == path]


def only(result: ParseResult) -> Any:
    assert result.errors == []
    (record,) = [record for _, record in result.records]
    return record


def records_of(kind: type[R], result: ParseResult) -> list[R]:
    """The records of `result`, in order, each asserted to be a `kind` (for the type checker)."""
    found: list[R] = []
    for _, record in result.records:
        assert isinstance(record, kind), record
        found.append(record)
    return found


def events(*raw: object) -> bytes:
    return json.dumps({"events": list(raw)}).encode()


def parse_events(body: bytes, limit: int = LIMIT) -> ParseResult:
    return parse_v2_create_events(body, session_id=SESSION, max_string_chars=limit)


def spans(result: ParseResult) -> list[SpanRecord]:
    return [record for _, record in result.records if isinstance(record, SpanRecord)]


# --- sessions and agents ----------------------------------------------------------------------


def test_create_session_starts_the_session_with_tags_and_host_env() -> None:
    (body,) = legacy_bodies("/v2/create_session")

    start = only(parse_v2_create_session(body))

    assert isinstance(start, SessionRecord)
    assert (start.session_id, start.action) == (SESSION, "start")
    assert start.started_at == datetime(2026, 11, 21, 18, 47, 35, 581248, tzinfo=UTC)
    assert start.tags == ("legacy", "probe", "session-tag")
    assert start.metadata is not None
    assert start.metadata["host_env"]["OS"]["Hostname"] == "vm"
    assert set(start.metadata) == {"host_env", "event_counts"}


def test_the_first_update_adds_tags_and_the_final_one_ends_the_session() -> None:
    first, final = legacy_bodies("/v2/update_session")

    update = only(parse_v2_update_session(first))
    result = parse_v2_update_session(final)

    assert (update.action, update.tags) == (
        "update",
        ("legacy", "probe", "session-tag", "added-later"),
    )
    records = records_of(SessionRecord, result)
    assert [r.action for r in records] == ["update", "end"]
    assert records[0].metadata is not None
    assert records[0].metadata["video"] == "http://example.invalid/v.mp4"
    end = records[1]
    assert end.ended_at == datetime(2026, 11, 21, 18, 47, 36, 863727, tzinfo=UTC)
    assert (end.end_state, end.end_state_reason) == ("success", "all good")


def test_a_resent_create_session_is_a_duplicate_and_a_changed_one_is_not() -> None:
    (body,) = legacy_bodies("/v2/create_session")
    changed = json.loads(body)
    changed["session"]["tags"].append("inherited")

    first = only(parse_v2_create_session(body))
    again = only(parse_v2_create_session(body))
    other = only(parse_v2_create_session(json.dumps(changed).encode()))

    assert first.record_id == again.record_id
    assert first.record_id != other.record_id


def test_a_session_without_an_id_is_refused() -> None:
    result = parse_v2_create_session(b'{"session": {"init_timestamp": "2026-11-21T18:47:35Z"}}')

    (error,) = result.errors
    assert error.field == "session.session_id"
    assert result.records == []


def test_create_agent_registers_the_agent_under_the_tokens_session() -> None:
    (body,) = legacy_bodies("/v2/create_agent")

    agent = only(parse_v2_create_agent(body, session_id=SESSION))

    assert isinstance(agent, AgentRecord)
    assert (agent.session_id, agent.agent_id, agent.name, agent.action) == (
        SESSION,
        AGENT,
        "legacy-weather-agent",
        "created",
    )


def test_reauthorize_jwt_names_the_session() -> None:
    assert parse_v2_reauthorize_jwt(json.dumps({"session_id": SESSION}).encode()) == SESSION
    with pytest.raises(BodyError):
        parse_v2_reauthorize_jwt(b"{}")


@pytest.mark.parametrize(
    "parse",
    [
        parse_v2_create_session,
        parse_v2_update_session,
        lambda body: parse_v2_create_events(body, session_id=SESSION, max_string_chars=LIMIT),
    ],
    ids=["create_session", "update_session", "create_events"],
)
@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"session": [], "events": {}}'])
def test_non_json_and_wrong_shapes_are_a_400(
    parse: Callable[[bytes], ParseResult], body: bytes
) -> None:
    with pytest.raises(BodyError) as caught:
        parse(body)

    assert caught.value.status == 400


def test_a_create_agent_body_that_is_not_an_object_is_a_400_and_one_without_id_is_refused() -> None:
    with pytest.raises(BodyError):
        parse_v2_create_agent(b'["agent"]', session_id=SESSION)

    result = parse_v2_create_agent(b'{"name": "nameless"}', session_id=SESSION)

    assert [e.field for e in result.errors] == ["id"]


# --- events -----------------------------------------------------------------------------------


def test_create_events_maps_every_captured_event() -> None:
    (body,) = legacy_bodies("/v2/create_events")

    result = parse_events(body)

    assert result.errors == []
    mapped = spans(result)
    assert [(s.kind, s.name) for s in mapped] == [
        ("tool", "lookup_weather"),
        ("action", "plan_step"),
        ("action", "manual_action"),
        ("tool", "manual_tool"),
        ("llm", "gpt-4o-mini"),
        ("error", "ValueError"),
        ("llm", "gpt-4o-mini-2024-07-18"),
    ]
    assert {(s.session_id, s.agent_id) for s in mapped} == {(SESSION, AGENT)}
    tool, plan, manual, manual_tool, llm, error, auto_llm = mapped
    assert tool.span_id == "7097208c-e7f5-4dad-a101-023933a6aa75"
    assert (tool.params, tool.returns) == ({"city": "Paris"}, "sunny in Paris")
    assert (plan.params, plan.returns) == ({"step": 1}, {"step": 1, "ok": True})
    assert manual.attributes["logs"] == "some log"
    assert manual_tool.attributes["logs"] == {"detail": "x"}
    assert (llm.prompt_tokens, llm.completion_tokens, llm.cost, llm.is_cost_missing) == (
        3,
        2,
        0.0001,
        False,
    )
    assert llm.prompt == [{"role": "user", "content": "hi"}]
    assert llm.completion == {"role": "assistant", "content": "hello"}
    assert (error.status, error.error_type, error.error_message) == (
        "error",
        "ValueError",
        "manual failure",
    )
    assert error.attributes["code"] == "E42"
    assert error.stack_trace.endswith("ValueError: manual failure\n")
    assert auto_llm.completion == {
        "content": "The weather in Paris is sunny, 21C.",
        "role": "assistant",
    }
    assert auto_llm.returns is None


def test_an_llm_event_without_a_cost_is_left_to_the_price_table() -> None:
    (body,) = legacy_bodies("/v2/create_events")

    auto_llm = spans(parse_events(body))[-1]

    assert (auto_llm.cost, auto_llm.is_cost_missing) == (None, True)
    assert (auto_llm.model, auto_llm.prompt_tokens, auto_llm.completion_tokens) == (
        "gpt-4o-mini-2024-07-18",
        23,
        11,
    )


def test_old_error_events_with_a_timestamp_link_to_their_trigger() -> None:
    """<= 0.3.18: errors are not Events (no id, `timestamp` only) and name the trigger event,
    which is sent in the same batch."""
    trigger = {
        "id": "tool-1",
        "event_type": "tools",
        "name": "search",
        "init_timestamp": "2026-11-21T10:00:00+00:00",
        "end_timestamp": "2026-11-21T10:00:01+00:00",
    }
    error = {
        "event_type": "errors",
        "timestamp": "2026-11-21T10:00:01.5+00:00",
        "trigger_event_id": "tool-1",
        "trigger_event_type": "tools",
        "error_type": "TimeoutError",
        "details": {"after_s": 30},
        "logs": "Traceback ...",
    }

    tool, failure = spans(parse_events(events(trigger, error)))

    assert tool.status == "error"
    assert failure.parent_span_id == "tool-1"
    assert failure.span_id.startswith("v2-")
    assert failure.started_at == datetime(2026, 11, 21, 10, 0, 1, 500000, tzinfo=UTC)
    assert failure.error_message == '{"after_s":30}'
    assert failure.attributes["trigger_event_type"] == "tools"


def test_string_prompts_and_completions_become_messages() -> None:
    """0.2.x LLMEvents: prompt and completion as plain strings, no cost."""
    event = {
        "id": "llm-1",
        "event_type": "llms",
        "init_timestamp": "2026-11-21T10:00:00Z",
        "prompt": "Say hi",
        "completion": "hi",
        "prompt_tokens": "2",
        "model": "gpt-3.5-turbo",
        "thread_id": "t-1",
    }

    (llm,) = spans(parse_events(events(event)))

    assert llm.prompt == [{"role": "user", "content": "Say hi"}]
    assert llm.completion == {"role": "assistant", "content": "hi"}
    assert (llm.prompt_tokens, llm.completion_tokens, llm.ended_at) == (2, None, llm.started_at)
    assert llm.attributes["thread_id"] == "t-1"


def test_apis_and_unknown_event_types_are_actions() -> None:
    event = {"id": "a-1", "event_type": "apis", "init_timestamp": "2026-11-21T10:00:00Z"}

    (api,) = spans(parse_events(events(event)))

    assert (api.kind, api.attributes["observatory.kind"]) == ("action", "api")


def test_a_bad_event_is_refused_and_the_others_kept() -> None:
    good = {
        "id": "a-1",
        "event_type": "actions",
        "action_type": "plan",
        "init_timestamp": "2026-11-21T10:00:00Z",
    }
    no_time = {"id": "a-2", "event_type": "actions"}
    backwards = {**good, "id": "a-3", "end_timestamp": "2026-11-21T09:00:00Z"}

    result = parse_events(events(good, no_time, "nonsense", backwards))

    assert [s.span_id for s in spans(result)] == ["a-1"]
    assert [(e.index, e.field) for e in result.errors] == [
        (1, "events[1].init_timestamp"),
        (2, "events[2]"),
        (3, "events[3].end_timestamp"),
    ]
    assert result.errors[0].record_type == "actions"


def test_event_ids_are_stable_for_a_retried_batch() -> None:
    (body,) = legacy_bodies("/v2/create_events")

    first = [r.record_id for _, r in parse_events(body).records]
    again = [r.record_id for _, r in parse_events(body).records]

    assert first == again
    assert len(set(first)) == len(first)


def test_a_cut_in_params_alone_is_noted_too() -> None:
    event = {
        "id": "t-1",
        "event_type": "tools",
        "init_timestamp": "2026-11-21T10:00:00Z",
        "returns": "y" * 500,
    }

    (tool,) = spans(parse_events(events(event), limit=100))

    assert tool.attributes["observatory.truncated"] == {"events[0].returns": 500}


def test_oversized_strings_are_cut_with_a_marker_not_refused() -> None:
    event = {
        "id": "a-1",
        "event_type": "actions",
        "init_timestamp": "2026-11-21T10:00:00Z",
        "params": {"document": "x" * 5000},
        "screenshot": "iVBOR" + "A" * 5000,
    }

    (action,) = spans(parse_events(events(event), limit=100))

    assert action.params["document"].startswith("x" * 100)
    assert "OBSERVATORY_MAX_STRING_CHARS is 100" in action.params["document"]
    assert action.attributes["observatory.truncated"] == {
        "events[0].screenshot": 5005,
        "events[0].params.document": 5000,
    }


# --- /v4/logs/upload/ -------------------------------------------------------------------------


def test_the_log_upload_becomes_log_lines_of_the_decimal_trace() -> None:
    body = (AGENTOPS / "raw-main" / "007-POST-v4_logs_upload.bin").read_bytes()

    result = parse_agentops_log_upload(
        body, "154678691543737294060906556678324270518", max_string_chars=LIMIT
    )

    assert result.errors == []
    lines = records_of(TranscriptRecord, result)
    assert all(isinstance(line, TranscriptRecord) for line in lines)
    assert [(line.session_id, line.trace_id, line.role) for line in lines] == [
        ("745e084a12d16fd275ac148b2c76b5b6", "745e084a12d16fd275ac148b2c76b5b6", "log")
    ] * 2
    assert [(line.at, line.text) for line in lines] == [
        (
            datetime(2026, 11, 21, 18, 47, 29, 501000, tzinfo=UTC),
            "agent starting: this line should end up in the uploaded log file",
        ),
        (
            datetime(2026, 11, 21, 18, 47, 30, 621000, tzinfo=UTC),
            "plan_trip -> Paris: sunny, 21C / The weather in Paris is sunny, 21C. | Sunny in Paris.",
        ),
    ]


def test_the_auto_scenario_upload_belongs_to_its_trace() -> None:
    body = (AGENTOPS / "raw-auto" / "003-POST-v4_logs_upload.bin").read_bytes()

    (line,) = records_of(
        TranscriptRecord,
        parse_agentops_log_upload(
            body, "172924635976111948373479988430144363269", max_string_chars=LIMIT
        ),
    )

    assert line.session_id == "821812cdf0259bb2dc3c55907f415b05"
    assert line.text == "auto scenario running"


def test_a_reupload_is_a_duplicate() -> None:
    body = (AGENTOPS / "raw-main" / "007-POST-v4_logs_upload.bin").read_bytes()
    header = "154678691543737294060906556678324270518"

    first = [
        r.record_id
        for _, r in parse_agentops_log_upload(body, header, max_string_chars=LIMIT).records
    ]
    again = [
        r.record_id
        for _, r in parse_agentops_log_upload(body, header, max_string_chars=LIMIT).records
    ]

    assert first == again
    assert len(set(first)) == 2


def test_levels_other_than_info_are_kept_and_lines_without_a_time_borrow_one() -> None:
    text = (
        "continued from before\n"
        "2026-11-21 18:47:29,501 - WARNING - disk almost full\n"
        "\n"
        "  second line of the same print\n"
        "2026-11-21 18:47:30,000 - INFO - done\n"
    )
    body = json.dumps({"body": text}).encode()

    result = parse_agentops_log_upload(body, "1", max_string_chars=LIMIT)

    lines = records_of(TranscriptRecord, result)
    assert [(line.text, line.at.second) for line in lines] == [
        ("continued from before", 29),
        ("WARNING: disk almost full", 29),
        ("  second line of the same print", 29),
        ("done", 30),
    ]
    assert lines[0].session_id == "00000000000000000000000000000001"


def test_log_lines_with_no_time_anywhere_use_the_receive_time_or_are_refused() -> None:
    body = json.dumps({"body": "no timestamps here\n"}).encode()
    received = datetime(2026, 11, 21, 20, 0, tzinfo=UTC)

    refused = parse_agentops_log_upload(body, "7", max_string_chars=LIMIT)
    kept = parse_agentops_log_upload(body, "7", max_string_chars=LIMIT, received_at=received)

    assert [(e.field, e.message) for e in refused.errors] == [
        ("body.lines[0]", "body.lines[0]: log line has no timestamp")
    ]
    assert [r.at for r in records_of(TranscriptRecord, kept)] == [received]


@pytest.mark.parametrize(
    "header", ["", "abc", "745e084a12d16fd275ac148b2c76b5b6", "-1", "0", str(2**128), "١٢٣"]
)
def test_an_invalid_trace_id_header_is_a_400_naming_it(header: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_agentops_log_upload(b'{"body": "x"}', header, max_string_chars=LIMIT)

    assert caught.value.status == 400
    assert caught.value.field == "Trace-Id"
    assert "Trace-Id" in caught.value.message


@pytest.mark.parametrize("body", [b"not json", b'{"body": 3}', b'["body"]'])
def test_a_log_upload_body_that_is_not_the_sdk_shape_is_a_400(body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        parse_agentops_log_upload(body, "1", max_string_chars=LIMIT)

    assert caught.value.status == 400


def test_the_trace_id_header_converts_to_the_hex_trace_id() -> None:
    assert (
        trace_id_from_header(" 154678691543737294060906556678324270518 ")
        == "745e084a12d16fd275ac148b2c76b5b6"
    )
