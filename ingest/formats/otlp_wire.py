"""The wire shapes of OTLP: the small frozen dataclasses both encodings decode into (hex ids,
unix nanoseconds, attributes as plain JSON-able dicts), and the protocol's limits and enums. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ingest.formats.records import RecordError

DEFAULT_SESSION_ATTRIBUTES = ("session.id", "session_id", "gen_ai.conversation.id")


CONVERSATION_KEY = "gen_ai.conversation.id"


# AutoGen runtime attributes that carry "<name>_<team uuid>" (agent types, topics, agent ids).
AUTOGEN_TEAM_KEYS = (
    "recipient_agent_type",
    "sender_agent_type",
    "messaging.destination",
    "gen_ai.agent.id",
)


_TEAM_UUID = re.compile(r"_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I)


PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")


JSON_TYPES = ("application/json",)


MAX_NAME_CHARS = 300


MAX_SESSION_ID_CHARS = 128


MAX_NESTING = 32


# datetime cannot go past year 9999.
MAX_UINT64 = 2**64 - 1


MAX_UNIX_NANOS = 253402300799 * 10**9


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


ZERO_TRACE_ID = bytes(16)


ZERO_SPAN_ID = bytes(8)


STATUS_NAMES = {0: "unset", 1: "ok", 2: "error"}


STATUS_ERROR = 2


SPAN_KIND_NAMES = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer"}


SPAN_KIND_NAMES[5] = "consumer"


SPAN_KIND_ENUM = {f"SPAN_KIND_{name.upper()}": n for n, name in SPAN_KIND_NAMES.items()}


STATUS_ENUM = {f"STATUS_CODE_{name.upper()}": n for n, name in STATUS_NAMES.items()}


SEVERITY_ENUM = {
    f"SEVERITY_NUMBER_{name}{suffix}": base + offset
    for name, base in (("TRACE", 1), ("DEBUG", 5), ("INFO", 9), ("WARN", 13), ("ERROR", 17))
    for offset, suffix in enumerate(("", "2", "3", "4"))
} | {f"SEVERITY_NUMBER_FATAL{s}": 21 + i for i, s in enumerate(("", "2", "3", "4"))}


SEVERITY_WARN = 13


LOUD_SEVERITY_TEXTS = ("WARN", "WARNING", "ERROR", "FATAL", "CRITICAL")


# Resource attributes copied onto every span as resource.<key>: small and useful for filtering.
RESOURCE_SPAN_KEYS = ("service.name", "service.version", "deployment.environment")


RESOURCE_SPAN_ATTRIBUTES = tuple((key, f"resource.{key}") for key in RESOURCE_SPAN_KEYS)


TASKWEAVER_ROUND_SPAN = "Session.send_message"


NO_SESSION_SPAN_TAG = "no-session-span"


@dataclass(frozen=True, slots=True)
class WireEvent:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WireLink:
    """A span link: the span context another span points at (hex ids)."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


# Not frozen, unlike the other wire shapes: one is built per span, and a frozen dataclass's
# __init__ sets each of its 18 fields through object.__setattr__ (4x slower). Treat as read-only.
# Built with positional arguments: CPython compiles a call with more than 15 keyword arguments
# to build a dict and unpack it (CALL_FUNCTION_EX), several times the cost of the call itself.
@dataclass(slots=True)
class WireSpan:
    """One decoded span: ids in hex, times in unix nanoseconds, attributes JSON-able."""

    index: int
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: tuple[WireEvent, ...]
    resource: dict[str, Any]
    scope_name: str
    scope_version: str
    digest: str  # this version of the span: see _version_key
    truncated: dict[str, int]
    links: tuple[WireLink, ...] = ()


@dataclass(frozen=True, slots=True)
class WireLog:
    index: int
    path: str
    trace_id: str
    span_id: str
    time_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    body: Any
    event_name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    digest: str


@dataclass(frozen=True, slots=True)
class WirePoint:
    """One metric data point reduced to its samples, e.g. (("count", 3.0), ("sum", 1.2))."""

    index: int
    path: str
    name: str
    unit: str
    time_ns: int
    samples: tuple[tuple[str, float], ...]
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WireBatch:
    items: list[Any]
    errors: list[RecordError]
