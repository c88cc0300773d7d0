"""Readers of the OTLP fixtures shared by the tests/ingest/test_formats_otlp*.py modules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ingest.formats.otlp import (
    parse_otlp_traces,
)
from ingest.formats.records import (
    ParseResult,
    SessionRecord,
    SpanRecord,
)

AGENTOPS = Path(__file__).resolve().parents[1] / "fixtures" / "agentops"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
LIMIT = 10_000

SUCCESS_TRACE = "745e084a12d16fd275ac148b2c76b5b6"
WEATHER_AGENT = "4634be999f279637"
TOOL_CALL_SPAN = "bb9e59938f37edc6"
FIRST_LLM_SPAN = "bac2ef91296d2f79"

T = TypeVar("T")


def raw_body(name: str, folder: str = "raw-main") -> bytes:
    return (AGENTOPS / folder / name).read_bytes()


def parse_raw(name: str, folder: str = "raw-main") -> ParseResult:
    return parse_otlp_traces(raw_body(name, folder), PROTOBUF, max_string_chars=LIMIT)


def parse_fixture(name: str, **options: Any) -> ParseResult:
    body = (FIXTURES / name).read_bytes()
    return parse_otlp_traces(body, JSON, max_string_chars=LIMIT, **options)


def records_of(result: ParseResult, kind: type[T]) -> list[T]:
    return [record for _, record in result.records if isinstance(record, kind)]


def span_named(result: ParseResult, name: str) -> SpanRecord:
    (span,) = [s for s in records_of(result, SpanRecord) if s.name == name and s.kind != "error"]
    return span


def session_record(result: ParseResult, action: str) -> SessionRecord:
    (record,) = [r for r in records_of(result, SessionRecord) if r.action == action]
    return record


def at(nanos: int) -> datetime:
    return datetime.fromtimestamp(nanos // 1000 / 1_000_000, tz=UTC)
