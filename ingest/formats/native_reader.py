"""Reading one native record's fields: typed getters that refuse a bad value with its field path
(`_Reader`), timestamps, and the fields every record has. Pure.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

MAX_ID_CHARS = 128


MAX_NAME_CHARS = 300


class _FieldError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Reader:
    """Typed, lax access to one raw record's fields; raises _FieldError naming the path."""

    def __init__(self, raw: Any, path: str, max_chars: int, *, check_sizes: bool = True) -> None:
        if not isinstance(raw, dict):
            raise _FieldError(path, f"a record must be an object, got {type(raw).__name__}")
        self.raw: dict[str, Any] = raw
        self.path = path
        self.max_chars = max_chars
        self.check_sizes = check_sizes

    def fail(self, name: str, message: str) -> _FieldError:
        return _FieldError(f"{self.path}.{name}", message)

    def has(self, name: str) -> bool:
        return self.raw.get(name) is not None

    def text(self, name: str, *, required: bool = False, limit: int | None = None) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(name, f"must be a string, got {type(value).__name__}")
        text = str(value)
        cap = min(limit or self.max_chars, self.max_chars)
        if len(text) > cap:
            setting = "" if limit else " (OBSERVATORY_MAX_STRING_CHARS)"
            raise self.fail(name, f"is {len(text)} characters; the limit{setting} is {cap}")
        return text

    def ident(self, name: str, *, required: bool = True) -> str | None:
        return self.text(name, required=required, limit=MAX_ID_CHARS)

    def choice(self, name: str, options: tuple[str, ...], *, default: str | None = None) -> str:
        value = self.text(name, required=default is None, limit=50)
        if value is None:
            return str(default)
        if value.lower() not in options:
            raise self.fail(name, f"must be one of {', '.join(options)}, got {value!r}")
        return value.lower()

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        if isinstance(value, bool):
            raise self.fail(name, "must be a number, got a boolean")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self.fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise self.fail(name, "must be a finite number")
        return number

    def count(self, name: str) -> int | None:
        number = self.number(name)
        if number is None:
            return None
        if number < 0 or number != int(number) or number > 2**31 - 1:
            raise self.fail(name, f"must be a whole number from 0 to {2**31 - 1}, got {number}")
        return int(number)

    def when(self, name: str, *, required: bool = False) -> datetime | None:
        value = self.raw.get(name)
        if value is None or value == "":
            if required:
                raise self.fail(name, "is required")
            return None
        parsed = parse_timestamp(value)
        if parsed is None:
            raise self.fail(name, f"not a timestamp (ISO 8601 or Unix seconds): {value!r}")
        return parsed

    def mapping(self, name: str) -> dict[str, Any] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(name, f"must be an object, got {type(value).__name__}")
        self._check_size(name, value)
        return value

    def tags(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(t, str | int) for t in value):
            raise self.fail(name, "must be a list of strings")
        if any(len(str(t)) > 200 for t in value):
            raise self.fail(name, "each tag is limited to 200 characters")
        return tuple(dict.fromkeys(str(t) for t in value))

    def json_value(self, name: str) -> Any:
        value = self.raw.get(name)
        if value is not None:
            self._check_size(name, value)
        return value

    def _check_size(self, name: str, value: Any) -> None:
        if not self.check_sizes:
            return
        size = len(json.dumps(value, default=str))
        if size > self.max_chars:
            raise self.fail(
                name,
                f"is {size} characters as JSON; the limit (OBSERVATORY_MAX_STRING_CHARS) is "
                f"{self.max_chars}",
            )


def parse_timestamp(value: Any) -> datetime | None:
    """ISO 8601 (naive means UTC) or Unix seconds, as an aware UTC datetime; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        seconds = float(value)
        if not math.isfinite(seconds) or not 0 <= seconds < 32503680000:  # before year 3000
            return None
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _common(reader: _Reader, *, session_required: bool = True) -> tuple[str, str]:
    record_id = reader.ident("id") or ""
    session_id = reader.ident("session_id", required=session_required) or ""
    return record_id, session_id


def _epoch_unknown() -> datetime:
    # Only reached for a required time, which reader.when() has already refused when missing:
    # it narrows the type without an assert.
    return datetime(1970, 1, 1, tzinfo=UTC)
