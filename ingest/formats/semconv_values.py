"""Scalar readers of span attributes shared by the semconv modules: the first present key, counts,
numbers, costs, JSON text. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import orjson

Attributes = Mapping[str, Any]


V = TypeVar("V")


MAX_INT32 = 2**31 - 1


# The characters orjson accepts at the start of a document. Text starting otherwise (agentops
# task outputs are often plain sentences) is not parsed: a failed parse raises, which costs more.
JSON_FIRST_CHARACTERS = frozenset('{["-0123456789tfn \t\n\r')


# Framework-reported cost wins over our estimate: pydantic-ai sends operation.cost (USD) per call.
TOTAL_COST_KEYS = (
    "gen_ai.usage.total_cost",
    "gen_ai.usage.cost",
    "llm.cost.total",
    "operation.cost",
)


PROMPT_COST_KEYS = ("gen_ai.usage.prompt_cost", "llm.cost.prompt")


COMPLETION_COST_KEYS = ("gen_ai.usage.completion_cost", "llm.cost.completion")


class KeyMemo(dict[str, V]):
    """compute(key) memoised for attribute keys, which repeat across spans. Read by subscription,
    it costs less than a call to an lru_cache'd function, and this runs for every attribute of
    every span. When unique keys (ids in key names) fill it, it starts afresh."""

    def __init__(self, compute: Callable[[str], V], max_keys: int = 16384) -> None:
        super().__init__()
        self.compute = compute
        self.max_keys = max_keys

    def __missing__(self, key: str) -> V:
        if len(self) >= self.max_keys:
            self.clear()
        value = self[key] = self.compute(key)
        return value


def first_present(attributes: Attributes, keys: tuple[str, ...]) -> Any:
    """The value of the first key present (and not empty)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def first_text(attributes: Attributes, keys: tuple[str, ...]) -> str:
    value = first_present(attributes, keys)
    return "" if value is None else str(value)


def first_count(attributes: Attributes, keys: tuple[str, ...]) -> int | None:
    """A token count from the first key that holds a whole number from 0 to 2**31-1."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            count = as_count(value)
            if count is not None:
                return count
    return None


def as_count(value: Any) -> int | None:
    if type(value) is int:  # the usual token count (bool is not int): no float round trip
        return value if 0 <= value <= MAX_INT32 else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1e308
        return None
    if not 0 <= number <= MAX_INT32 or number != int(number):
        return None
    return int(number)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def span_cost(attributes: Attributes) -> float | None:
    """gen_ai.usage.total_cost (or llm.cost.total), else the sum of prompt and completion cost."""
    total = _first_number(attributes, TOTAL_COST_KEYS)
    if total is not None:
        return total
    prompt = _first_number(attributes, PROMPT_COST_KEYS)
    completion = _first_number(attributes, COMPLETION_COST_KEYS)
    if prompt is None and completion is None:
        return None
    return (prompt or 0.0) + (completion or 0.0)


def _first_number(attributes: Attributes, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            number = as_number(value)
            if number is not None:
                return number
    return None


def parse_json_text(value: Any) -> Any:
    """A JSON string parsed (agentops writes inputs as JSON text), anything else unchanged."""
    if not isinstance(value, str) or not value or value[0] not in JSON_FIRST_CHARACTERS:
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
