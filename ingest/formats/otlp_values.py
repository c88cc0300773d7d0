"""OTLP attribute values, ids and times, from protobuf or OTLP/JSON, into plain Python values.
Pure."""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import zlib
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ingest.formats.otlp_wire import EPOCH, MAX_NESTING, MAX_UINT64


def _truncate(text: str, limit: int, key: str, truncated: dict[str, int]) -> str:
    if len(text) <= limit:
        return text
    truncated[key] = len(text)
    return (
        f"{text[:limit]}… [truncated: {len(text)} characters, the limit "
        f"OBSERVATORY_MAX_STRING_CHARS is {limit}]"
    )


def _clean(text: str) -> str:
    # PostgreSQL text and jsonb cannot hold NUL.
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def _pb_attributes(
    kvs: Iterable[Any], limit: int, truncated: dict[str, int], prefix: str = ""
) -> dict[str, Any]:
    """Protobuf KeyValues as a dict. The hot path: a non-empty string (most attributes) costs
    one read and no call; everything else goes through WhichOneof."""
    out: dict[str, Any] = {}
    for kv in kvs:
        key = kv.key
        if "\x00" in key:  # jsonb keys cannot hold NUL either: the request would fail whole
            key = _clean(key)
        value = kv.value
        text = value.string_value
        if text:
            # PostgreSQL text and jsonb cannot hold NUL.
            if len(text) > limit or "\x00" in text:
                text = _clean(_truncate(text, limit, prefix + key, truncated))
            out[key] = text
            continue
        which = value.WhichOneof("value")
        if which == "int_value":  # token counts: the usual non-string, read without a call
            out[key] = value.int_value
        else:
            out[key] = _pb_value(value, which, limit, truncated, prefix + key, 0)
    return out


def _pb_value(
    value: Any, which: str | None, limit: int, truncated: dict[str, int], key: str, depth: int
) -> Any:
    if which == "string_value":
        text = value.string_value
        return _clean(_truncate(text, limit, key, truncated) if len(text) > limit else text)
    if which in ("int_value", "bool_value"):
        return getattr(value, which)
    if which == "double_value":
        return _json_float(value.double_value)
    if which is None:
        return None
    if depth >= MAX_NESTING:
        return "[nested too deep]"
    if which == "array_value":
        return [
            _pb_value(item, item.WhichOneof("value"), limit, truncated, key, depth + 1)
            for item in value.array_value.values
        ]
    if which == "kvlist_value":
        return {
            _clean(kv.key): _pb_value(
                kv.value, kv.value.WhichOneof("value"), limit, truncated, key, depth + 1
            )
            for kv in value.kvlist_value.values
        }
    return base64.b64encode(value.bytes_value).decode()


def _json_float(number: float) -> float | str:
    """JSON cannot hold NaN or infinities; keep them as text."""
    return number if math.isfinite(number) else str(number)


def _jget(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _json_attributes(
    raw: Any, limit: int, truncated: dict[str, int], prefix: str = ""
) -> dict[str, Any]:
    """OTLP/JSON [{"key", "value": AnyValue}] as a dict. Lax: a bare JSON value is accepted and
    entries without a string key are skipped, so an odd attribute never costs the span."""
    out: dict[str, Any] = {}
    if not isinstance(raw, list):
        return out
    for entry in raw:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            key = _clean(entry["key"])
            out[key] = _json_value(entry.get("value"), limit, truncated, prefix + key, 0)
    return out


def _json_value(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    if isinstance(raw, str):
        return _truncate(raw, limit, key, truncated) if len(raw) > limit else raw
    if not isinstance(raw, dict):
        return raw
    for name, inner in raw.items():
        converter = _JSON_ANY.get(name)
        if converter is not None:
            if depth >= MAX_NESTING:
                return "[nested too deep]"
            return converter(inner, limit, truncated, key, depth)
    return None


def _json_string(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    text = raw if isinstance(raw, str) else str(raw)
    return _truncate(text, limit, key, truncated) if len(text) > limit else text


def _json_int_value(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    try:
        return int(raw)
    except (TypeError, ValueError):
        return raw


def _json_double(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    try:
        return _json_float(float(raw))
    except (TypeError, ValueError):
        return raw


def _json_bool(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    return raw if isinstance(raw, bool) else str(raw).lower() == "true"


def _json_array(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    values = raw.get("values") if isinstance(raw, dict) else raw
    if not isinstance(values, list):
        return []
    return [_json_value(item, limit, truncated, key, depth + 1) for item in values]


def _json_kvlist(raw: Any, limit: int, truncated: dict[str, int], key: str, depth: int) -> Any:
    values = raw.get("values") if isinstance(raw, dict) else raw
    if not isinstance(values, list):
        return {}
    return {
        entry["key"]: _json_value(entry.get("value"), limit, truncated, key, depth + 1)
        for entry in values
        if isinstance(entry, dict) and isinstance(entry.get("key"), str)
    }


_JSON_ANY = {
    "stringValue": _json_string,
    "string_value": _json_string,
    "intValue": _json_int_value,
    "int_value": _json_int_value,
    "doubleValue": _json_double,
    "double_value": _json_double,
    "boolValue": _json_bool,
    "bool_value": _json_bool,
    "arrayValue": _json_array,
    "array_value": _json_array,
    "kvlistValue": _json_kvlist,
    "kvlist_value": _json_kvlist,
    "bytesValue": _json_string,
    "bytes_value": _json_string,
}


def _json_int(raw: Any) -> int | None:
    """int64/uint64 fields: OTLP/JSON writes them as strings, some exporters as numbers. None
    for anything else, a number past 64 bits included (float() of it would overflow)."""
    if raw is None or raw == "":
        return 0
    if isinstance(raw, bool):
        return None
    try:
        number = int(raw)
    except (TypeError, ValueError):
        try:
            as_float = float(raw)
        except (TypeError, ValueError):
            return None
        number = int(as_float) if math.isfinite(as_float) else MAX_UINT64 + 1
    return number if -MAX_UINT64 <= number <= MAX_UINT64 else None


def _json_enum(raw: Any, names: Mapping[str, int]) -> int:
    """Enums arrive as numbers or as their names (e.g. "STATUS_CODE_ERROR")."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if isinstance(raw, str):
        return int(raw) if raw.isdigit() else names.get(raw.upper(), 0)
    return 0


def _json_id(raw: Any, size: int) -> bytes | None:
    """An id from OTLP/JSON: hex as the spec says, or base64 as some exporters send. b"" when
    absent, None when it cannot be read as `size` bytes."""
    if raw is None or raw == "":
        return b""
    if not isinstance(raw, str):
        return None
    if len(raw) == 2 * size:
        try:
            return bytes.fromhex(raw)
        except ValueError:
            pass
    padded = raw + "=" * (-len(raw) % 4)
    for altchars in (None, b"-_"):
        try:
            decoded = base64.b64decode(padded, altchars=altchars, validate=True)
        except (binascii.Error, ValueError):
            continue
        if len(decoded) == size:
            return decoded
    return None


def _digest(*parts: str | bytes) -> str:
    """A stable 128-bit hex digest (SHA-256 is hardware-accelerated on current CPUs)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part if isinstance(part, bytes) else part.encode())
        hasher.update(b"\x1f")
    return hasher.hexdigest()[:32]


def _version_key(trace_id: str, span_id: str, content: bytes) -> str:
    """Which version of which span: its hex ids and a CRC-32 of its wire content. The ids make
    it unique; the checksum only has to tell two versions of one span apart, so a cheap one does
    (a cryptographic hash of every span was a tenth of the parse time)."""
    return f"{trace_id}{span_id}:{zlib.crc32(content):08x}"


def _at(nanos: int) -> datetime:
    # timedelta(days, seconds, microseconds) positionally: keywords cost a third more.
    return EPOCH + timedelta(0, 0, nanos // 1000)
