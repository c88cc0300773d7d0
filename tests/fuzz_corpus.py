"""Seeded mutations of the committed OTLP captures, for fuzzing /v1/* (issue 14). Pure.

The seeds are the real exporters' requests in tests/fixtures/frameworks/*/ (protobuf), the
agentops 0.4 captures in tests/fixtures/agentops/raw-*/ and the OTLP/JSON examples in
tests/fixtures/otlp/. Each case is either *broken* (bytes flipped, cut, spliced: usually not
decodable) or *evil but well formed* (decoded, then values PostgreSQL refuses or that stretch the
parser put in: huge numbers, NaN, NUL, over-long names and ids, bad ids and times, deep nesting),
in protobuf and in JSON. tests/ingest/test_fuzz_otlp.py posts a few hundred to the test client;
bench/fuzz.sh posts thousands to a live server.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict, ParseDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

FIXTURES = Path(__file__).parent / "fixtures"
PROTOBUF = "application/x-protobuf"
JSON = "application/json"
REQUEST_TYPES: dict[str, Any] = {
    "traces": ExportTraceServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "logs": ExportLogsServiceRequest,
}


@dataclass(frozen=True)
class Seed:
    signal: str  # traces | metrics | logs
    body: bytes  # protobuf
    name: str


@dataclass(frozen=True)
class FuzzCase:
    signal: str
    content_type: str
    body: bytes
    label: str  # seed and mutation, to reproduce a failure

    @property
    def path(self) -> str:
        return f"/v1/{self.signal}"


def seeds() -> list[Seed]:
    """Every committed OTLP request, as protobuf (the JSON examples are encoded to protobuf)."""
    found: list[Seed] = []
    for path in sorted(FIXTURES.glob("frameworks/*/*/*.bin")):
        signal = path.stem.split("-", 1)[-1]
        if signal in REQUEST_TYPES:
            found.append(Seed(signal, path.read_bytes(), str(path.relative_to(FIXTURES))))
    for path in sorted(FIXTURES.glob("agentops/raw-*/*-POST-v1_*.bin")):
        signal = path.stem.rsplit("_", 1)[-1]
        found.append(Seed(signal, path.read_bytes(), str(path.relative_to(FIXTURES))))
    for path in sorted(FIXTURES.glob("otlp/*.json")):
        data = json.loads(path.read_text())
        signal = next((s for s in REQUEST_TYPES if f"resource{s.capitalize()}" in data), "traces")
        message = ParseDict(_hex_ids_to_base64(data), REQUEST_TYPES[signal]())
        found.append(Seed(signal, message.SerializeToString(), str(path.relative_to(FIXTURES))))
    return found


def _hex_ids_to_base64(value: Any) -> Any:
    """OTLP/JSON ids are hex; protobuf's JSON mapping wants base64 for bytes fields."""
    if isinstance(value, dict):
        return {
            k: (
                base64.b64encode(bytes.fromhex(v)).decode()
                if k in ("traceId", "spanId", "parentSpanId") and isinstance(v, str)
                else _hex_ids_to_base64(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids_to_base64(v) for v in value]
    return value


# --- broken bytes ------------------------------------------------------------------------------


def _flip(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 8)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def _cut(rng: random.Random, body: bytes) -> bytes:
    return body[: rng.randrange(max(1, len(body)))]


def _insert(rng: random.Random, body: bytes) -> bytes:
    at = rng.randrange(len(body) + 1)
    return body[:at] + rng.randbytes(rng.randint(1, 64)) + body[at:]


def _splice(rng: random.Random, body: bytes) -> bytes:
    a, b = sorted(rng.randrange(len(body) + 1) for _ in range(2))
    return body[:a] + body[b:] + body[a:b]


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [_flip, _cut, _insert, _splice]


# --- evil but well-formed values ---------------------------------------------------------------

EVIL_STRINGS = [
    "",
    "\x00",
    "nul\x00inside",
    "x" * 5000,
    "é" * 400,
    "\U0001f600" * 200,
    "a" * 129,
    "." * 2 + "/" + "." * 2 + "/passwd",  # a path climbing up (spelt so: the guard test)
    "<script>alert(1)</script>",
    "1a" * 400 + "é",
    " ",
    "\u202e",
]
EVIL_INTS = [0, -1, 2**31, 2**31 - 1, 2**53 + 1, 2**63 - 1, -(2**63)]
EVIL_DOUBLES = [float("nan"), float("inf"), float("-inf"), 1e308, -0.0, 5e-324]
EVIL_NANOS = [0, 1, 2**63 - 1, 2**64 - 1, 16725225600 * 10**9]  # the last: year 2500
EVIL_IDS = [b"", b"\x00" * 16, b"\x01", b"\xff" * 20, b"\x00" * 8]
HOT_KEYS = [
    "session.id",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.request.model",
    "gen_ai.system",
    "agentops.span.kind",
    "gen_ai.agent.name",
    "llm.token_count.prompt",
    "gen_ai.operation.name",
    "messaging.message.id",
    "messaging.destination.name",
    "exception.message",
    "tool.name",
    "workflow.name",
    "agent.id",
]


def _set_any(rng: random.Random, value: Any) -> None:
    """Give an AnyValue an evil value of a random type."""
    choice = rng.randrange(6)
    if choice == 0:
        value.string_value = rng.choice(EVIL_STRINGS)
    elif choice == 1:
        value.int_value = rng.choice(EVIL_INTS)
    elif choice == 2:
        value.double_value = rng.choice(EVIL_DOUBLES)
    elif choice == 3:
        value.bool_value = True
    elif choice == 4:
        inner = value.array_value.values.add()
        for _ in range(rng.randint(1, 40)):  # nested arrays, deeper than a parser may recurse
            inner = inner.array_value.values.add()
        inner.string_value = rng.choice(EVIL_STRINGS)
    else:
        kv = value.kvlist_value.values.add()
        kv.key = rng.choice(EVIL_STRINGS + HOT_KEYS)
        kv.value.int_value = rng.choice(EVIL_INTS)


def _attributes_of(rng: random.Random, item: Any) -> None:
    attributes = item.attributes
    if len(attributes) and rng.random() < 0.5:
        kv = attributes[rng.randrange(len(attributes))]
    else:
        kv = attributes.add()
        kv.key = rng.choice(HOT_KEYS + EVIL_STRINGS)
    _set_any(rng, kv.value)


def _mutate_span(rng: random.Random, span: Any) -> None:
    for _ in range(rng.randint(1, 4)):
        field = rng.randrange(9)
        if field == 0:
            span.name = rng.choice(EVIL_STRINGS)
        elif field == 1:
            span.trace_id = rng.choice(EVIL_IDS)
        elif field == 2:
            span.span_id = rng.choice(EVIL_IDS)
        elif field == 3:
            span.parent_span_id = rng.choice([*EVIL_IDS, span.span_id])
        elif field == 4:
            span.start_time_unix_nano = rng.choice(EVIL_NANOS)
        elif field == 5:
            span.end_time_unix_nano = rng.choice(EVIL_NANOS)
        elif field == 6:
            span.status.code = rng.choice([0, 1, 2, 7])
            span.status.message = rng.choice(EVIL_STRINGS)
        elif field == 7:
            event = span.events.add()
            event.name = rng.choice(["exception", *EVIL_STRINGS])
            event.time_unix_nano = rng.choice(EVIL_NANOS)
            _attributes_of(rng, event)
        else:
            link = span.links.add()
            link.trace_id = rng.choice([*EVIL_IDS, span.trace_id])
            link.span_id = rng.choice(EVIL_IDS)
        _attributes_of(rng, span)


def _items(message: Any, signal: str) -> list[Any]:
    """The spans, data points or log records of a request (the things with attributes)."""
    found: list[Any] = []
    if signal == "traces":
        for resource in message.resource_spans:
            found += [s for scope in resource.scope_spans for s in scope.spans]
    elif signal == "logs":
        for resource in message.resource_logs:
            found += [r for scope in resource.scope_logs for r in scope.log_records]
    else:
        for resource in message.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        found += list(getattr(metric, kind).data_points)
    return found


RESOURCE_LISTS = {
    "traces": "resource_spans",
    "metrics": "resource_metrics",
    "logs": "resource_logs",
}


def _resources(message: Any, signal: str) -> list[Any]:
    return [r.resource for r in getattr(message, RESOURCE_LISTS[signal])]


def _mutate_log(rng: random.Random, item: Any) -> None:
    choice = rng.randrange(4)
    if choice == 0:
        item.time_unix_nano = rng.choice(EVIL_NANOS)
    elif choice == 1:
        item.trace_id = rng.choice(EVIL_IDS)
    elif choice == 2:
        _set_any(rng, item.body)
    else:
        item.severity_text = rng.choice(EVIL_STRINGS)


def _mutate_point(rng: random.Random, item: Any) -> None:
    choice = rng.randrange(3)
    if choice == 0:
        item.time_unix_nano = rng.choice(EVIL_NANOS)
    elif choice == 1 and hasattr(item, "as_double"):
        item.as_double = rng.choice(EVIL_DOUBLES)
    elif hasattr(item, "as_int"):
        item.as_int = rng.choice(EVIL_INTS)


def _mutate_item(rng: random.Random, item: Any, signal: str) -> None:
    if signal == "traces":
        _mutate_span(rng, item)
        return
    for _ in range(rng.randint(1, 3)):
        (_mutate_log if signal == "logs" else _mutate_point)(rng, item)
        _attributes_of(rng, item)


def evil_message(rng: random.Random, seed: Seed) -> Any:
    """The seed's request decoded, with evil values in some of its items and resources."""
    message = REQUEST_TYPES[seed.signal].FromString(seed.body)
    items = _items(message, seed.signal)
    for item in rng.sample(items, k=min(len(items), rng.randint(1, 3))):
        _mutate_item(rng, item, seed.signal)
    for resource in _resources(message, seed.signal):
        if rng.random() < 0.3:
            _attributes_of(rng, resource)
    return message


EVIL_JSON: list[Any] = [
    None,
    True,
    -1,
    2**80,
    1e300,
    "",
    "x" * 3000,
    [],
    {},
    [[[[[[[[[[[]]]]]]]]]]],
    "NaN",
    "18446744073709551616",
    "-5",
    "zz",
]


def _json_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _json_paths(inner, (*path, key))
    elif isinstance(value, list):
        for n, inner in enumerate(value):
            yield from _json_paths(inner, (*path, n))


def _replace_at(data: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    parent = data
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return data


def evil_json(rng: random.Random, seed: Seed) -> bytes:
    """The seed as OTLP/JSON with a few values replaced by values of the wrong type or range,
    or by escapes PostgreSQL refuses in jsonb (a lone surrogate, NUL)."""
    message = REQUEST_TYPES[seed.signal].FromString(seed.body)
    data = MessageToDict(message)
    paths = list(_json_paths(data))[1:]
    for _ in range(rng.randint(1, 4)):
        if paths:
            data = _replace_at(data, rng.choice(paths), copy.deepcopy(rng.choice(EVIL_JSON)))
            paths = list(_json_paths(data))[1:]
    text = json.dumps(data)
    if rng.random() < 0.3 and '"stringValue": "' in text:
        # Escapes that json.dumps would never write: a lone surrogate, NUL.
        escape = rng.choice(["\\ud800", "\\udfff", "\\u0000", "\\ud83d\\u0041"])
        text = text.replace('"stringValue": "', f'"stringValue": "{escape}', 1)
    return text.encode()


def fuzz_cases(count: int, *, seed: int = 14) -> Iterator[FuzzCase]:
    """`count` cases, the same ones for the same seed: broken bytes, evil protobuf and evil JSON
    in turn, each from a seed request chosen at random."""
    rng = random.Random(seed)
    corpus = seeds()
    for n in range(count):
        origin = rng.choice(corpus)
        kind = n % 4
        if kind == 0:
            mutate = rng.choice(BYTE_MUTATIONS)
            body = mutate(rng, origin.body)
            yield FuzzCase(origin.signal, PROTOBUF, body, f"{origin.name}:{mutate.__name__}:{n}")
        elif kind == 1:
            body = evil_message(rng, origin).SerializeToString()
            yield FuzzCase(origin.signal, PROTOBUF, body, f"{origin.name}:evil-protobuf:{n}")
        elif kind == 2:
            body = evil_json(rng, origin)
            yield FuzzCase(origin.signal, JSON, body, f"{origin.name}:evil-json:{n}")
        else:
            mutate = rng.choice(BYTE_MUTATIONS)
            body = mutate(
                rng,
                json.dumps(
                    MessageToDict(REQUEST_TYPES[origin.signal].FromString(origin.body))
                ).encode(),
            )
            yield FuzzCase(origin.signal, JSON, body, f"{origin.name}:json-{mutate.__name__}:{n}")
