"""The native batch parser, tested without a database."""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.formats.native import decode_body, parse_native, parse_records
from ingest.formats.native_reader import parse_timestamp
from ingest.formats.records import BodyError, SessionRecord, SpanRecord, TranscriptRecord

LIMITS = {"max_records": 100, "max_string_chars": 1000}


def body(*records: dict[str, Any]) -> bytes:
    return json.dumps({"records": list(records)}).encode()


def event(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "id": "e1",
        "session_id": "s1",
        "kind": "llm",
        "name": "chat",
        "started_at": "2026-11-21T10:00:00Z",
    } | overrides


def test_it_parses_every_record_type() -> None:
    parsed = parse_native(
        body(
            {"type": "session.start", "id": "a", "session_id": "s1", "started_at": 1763719200},
            {"type": "session.update", "id": "b", "session_id": "s1", "tags": ["x", "x", "y"]},
            {"type": "session.end", "id": "c", "session_id": "s1", "ended_at": "2026-11-21T10:05"},
            {"type": "agent.created", "id": "d", "session_id": "s1", "agent_id": "judge"},
            {"type": "agent.terminated", "id": "e", "session_id": "s1", "agent_id": "judge"},
            event(id="f"),
            {
                "type": "status",
                "id": "g",
                "session_id": "s1",
                "role": "tool",
                "text": "Running",
                "at": "2026-11-21T10:00:01+02:00",
            },
            {
                "type": "message",
                "id": "h",
                "session_id": "s1",
                "role": "user",
                "content": "hi",
                "at": "2026-11-21T10:00:01Z",
            },
            {
                "type": "metric",
                "id": "i",
                "name": "memory_mb",
                "value": "12.5",
                "at": "2026-11-21T10:00:01Z",
            },
        ),
        **LIMITS,
    )
    assert parsed.errors == []
    assert [index for index, _ in parsed.records] == list(range(9))
    update = parsed.records[1][1]
    assert isinstance(update, SessionRecord) and update.tags == ("x", "y")
    end = parsed.records[2][1]
    assert isinstance(end, SessionRecord) and end.end_state == "indeterminate"
    assert end.ended_at == datetime(2026, 11, 21, 10, 5, tzinfo=UTC)
    status = parsed.records[6][1]
    assert isinstance(status, TranscriptRecord)
    assert status.at == datetime(2026, 11, 21, 8, 0, 1, tzinfo=UTC)


def test_numbers_sent_as_strings_are_accepted() -> None:
    parsed = parse_native(body(event(prompt_tokens="12", cost="0.5")), **LIMITS)
    span = parsed.records[0][1]
    assert isinstance(span, SpanRecord)
    assert (span.prompt_tokens, span.cost) == (12, 0.5)


def test_the_span_id_defaults_to_the_record_id() -> None:
    span = parse_native(body(event(id="abc")), **LIMITS).records[0][1]
    assert isinstance(span, SpanRecord) and span.span_id == "abc"


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        (event(started_at="yesterday"), "records[0].started_at", "not a timestamp"),
        (event(kind="thought"), "records[0].kind", "must be one of action, llm, tool, error"),
        (event(name=None), "records[0].name", "is required"),
        (event(id=None), "records[0].id", "is required"),
        (event(id="x" * 129), "records[0].id", "limit is 128"),
        (event(prompt_tokens=-1), "records[0].prompt_tokens", "whole number"),
        (event(cost="free"), "records[0].cost", "must be a number"),
        (event(ended_at="2026-11-21T09:00:00Z"), "records[0].ended_at", "before started_at"),
        (event(attributes=[1]), "records[0].attributes", "must be an object"),
        (event(error_message="e" * 1001), "records[0].error_message", "OBSERVATORY_MAX_STRING"),
        (event(params={"big": "p" * 1001}), "records[0].params", "OBSERVATORY_MAX_STRING"),
        ({"type": "nope", "id": "x"}, "records[0].type", "unknown record type 'nope'"),
        (
            {"type": "status", "id": "x", "session_id": "s", "role": "user", "text": "t", "at": 1},
            "records[0].role",
            "must be one of agent, llm, tool",
        ),
        (
            {"type": "metric", "id": "x", "name": "m", "value": "NaN", "at": 1},
            "records[0].value",
            "finite",
        ),
        ("just a string", "records[0]", "must be an object"),
    ],
)
def test_each_kind_of_bad_record_is_named_by_its_field_path(
    record: Any, field: str, words: str
) -> None:
    parsed = parse_native(body(record), **LIMITS)
    assert parsed.records == []
    [error] = parsed.errors
    assert error.field == field
    assert words in error.message
    assert error.raw == record


def test_one_bad_record_does_not_sink_the_good_ones() -> None:
    parsed = parse_native(body(event(id="a"), event(id="b", kind="?"), event(id="c")), **LIMITS)
    assert [r.record_id for _, r in parsed.records] == ["a", "c"]
    assert [e.index for e in parsed.errors] == [1]


def test_a_bare_list_is_accepted_as_a_batch() -> None:
    parsed = parse_native(json.dumps([event()]).encode(), **LIMITS)
    assert len(parsed.records) == 1


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (b"{", 400, "not valid JSON"),
        (b'{"items": []}', 400, "'records' list"),
        (b'{"records": {}}', 400, "must be a list"),
        (json.dumps({"records": [event()] * 101}).encode(), 413, "OBSERVATORY_MAX_BATCH_RECORDS"),
    ],
)
def test_an_unusable_body_is_refused_whole(raw: bytes, status: int, words: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_native(raw, **LIMITS)
    assert caught.value.status == status
    assert words in caught.value.message


def test_gzip_bodies_are_decoded() -> None:
    assert decode_body(gzip.compress(b"hello"), "gzip", max_bytes=100) == b"hello"


def test_every_member_of_a_multi_member_gzip_body_is_read() -> None:
    body = gzip.compress(b'{"records": [') + gzip.compress(b"1, 2]}")

    assert decode_body(body, "gzip", max_bytes=100) == b'{"records": [1, 2]}'


def test_the_limit_counts_every_gzip_member() -> None:
    body = gzip.compress(b"a" * 60) + gzip.compress(b"b" * 60)

    with pytest.raises(BodyError) as caught:
        decode_body(body, "gzip", max_bytes=100)
    assert caught.value.status == 413


@pytest.mark.parametrize(
    ("body", "encoding", "words"),
    [
        (gzip.compress(b"x" * 50)[:-6], "gzip", "cut short"),
        (zlib.compress(b"hello")[:-3], "deflate", "cut short"),
        (zlib.compress(b"hello") + b"junk", "deflate", "after the end"),
        (gzip.compress(b"hello") + b"junk", "gzip", "not valid gzip"),
    ],
)
def test_a_truncated_or_padded_compressed_body_is_a_400(
    body: bytes, encoding: str, words: str
) -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(body, encoding, max_bytes=100)
    assert caught.value.status == 400
    assert words in caught.value.message


def test_a_body_over_the_byte_limit_is_refused_with_413() -> None:
    with pytest.raises(BodyError) as caught:
        decode_body(b"x" * 101, "", max_bytes=100)
    assert caught.value.status == 413
    assert "OBSERVATORY_MAX_BATCH_BYTES" in caught.value.message


def test_a_small_gzip_that_inflates_past_the_limit_is_refused() -> None:
    bomb = gzip.compress(b"0" * 100_000)
    assert len(bomb) < 1000
    with pytest.raises(BodyError) as caught:
        decode_body(bomb, "gzip", max_bytes=1000)
    assert caught.value.status == 413


def test_broken_gzip_is_a_400_and_unknown_encodings_a_415() -> None:
    with pytest.raises(BodyError) as broken:
        decode_body(b"not gzip", "gzip", max_bytes=100)
    assert broken.value.status == 400
    with pytest.raises(BodyError) as unknown:
        decode_body(b"x", "br", max_bytes=100)
    assert unknown.value.status == 415


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-21T10:00:00Z", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T10:00:00", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        ("2026-11-21T12:00:00+02:00", datetime(2026, 11, 21, 10, tzinfo=UTC)),
        (1763719200, datetime(2025, 11, 21, 10, tzinfo=UTC)),
        ("1763719200.5", datetime(2025, 11, 21, 10, 0, 0, 500000, tzinfo=UTC)),
        ("soon", None),
        (True, None),
        (-5, None),
    ],
)
def test_timestamps_are_read_laxly_as_utc(value: Any, expected: datetime | None) -> None:
    assert parse_timestamp(value) == expected


def test_record_indexes_can_continue_from_an_offset() -> None:
    parsed = parse_records([event(kind="?")], max_string_chars=100, first_index=7)
    assert parsed.errors[0].field == "records[7].kind"
