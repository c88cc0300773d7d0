"""Model prices and the cost of an LLM call from its tokens. Pure; the table is data.

Every pricing decision is here: which calls are priced (SpanRecord.is_cost_missing), which price
applies (exact name, then the longest wildcard) and what the tokens cost. ingest/store/ only
reads the project's overrides and stores the estimates.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from ingest.formats.records import SpanRecord

PRICES_FILE = Path(__file__).resolve().parent / "data" / "model_prices.json"
# Attribute keys that carry the cached-input and reasoning parts of an LLM call's tokens.
CACHED_TOKEN_KEYS = (
    "gen_ai.usage.cache_read_input_tokens",
    "gen_ai.usage.cached_tokens",
    "llm.token_count.prompt_details.cache_read",
)
REASONING_TOKEN_KEYS = (
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None


@cache
def default_prices() -> dict[str, Price]:
    """The built-in table from ingest/data/model_prices.json (read once per process)."""
    raw = json.loads(PRICES_FILE.read_text())["prices"]
    return {model: Price(**fields) for model, fields in raw.items()}


def price_for(model: str, prices: dict[str, Price]) -> Price | None:
    """Exact name first (case-insensitive), then the longest matching wildcard pattern."""
    if not model:
        return None
    if model in prices:
        return prices[model]
    key = _best_key(model.lower(), tuple(prices))
    return prices[key] if key is not None else None


@lru_cache(maxsize=4096)
def _best_key(name: str, keys: tuple[str, ...]) -> str | None:
    # Cached: ingest prices every LLM span of a batch, mostly the same few models.
    for key in keys:
        if key.lower() == name:
            return key
    patterns = [
        key for key in keys if ("*" in key or "?" in key) and fnmatch.fnmatchcase(name, key.lower())
    ]
    return max(patterns, key=len) if patterns else None


def llm_cost(
    price: Price,
    *,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cached_input_tokens: int | None = None,
    reasoning_tokens: int | None = None,
) -> float:
    """Cost in USD. Cached input tokens are part of prompt_tokens and billed at the cached rate
    when the model has one; reasoning tokens are part of completion_tokens likewise."""
    prompt = prompt_tokens or 0
    completion = completion_tokens or 0
    cached = min(cached_input_tokens or 0, prompt) if price.cached_input is not None else 0
    reasoning = min(reasoning_tokens or 0, completion) if price.reasoning is not None else 0
    total = (
        (prompt - cached) * price.input
        + cached * (price.cached_input or 0)
        + (completion - reasoning) * price.output
        + reasoning * (price.reasoning or 0)
    )
    return round(total / 1_000_000, 10)


def estimated_costs(records: list[SpanRecord], prices: dict[str, Price]) -> dict[int, float]:
    """Costs from `prices` for the LLM calls that report none (is_cost_missing), by id() of their
    record; a call whose model has no price gets none."""
    by_model: dict[str, Price | None] = {}
    costs: dict[int, float] = {}
    for record in records:
        if not record.is_cost_missing:
            continue
        if record.model not in by_model:  # a batch has a few models and many calls
            by_model[record.model] = price_for(record.model, prices)
        price = by_model[record.model]
        if price is not None:
            costs[id(record)] = record_cost(record, price)
    return costs


def record_cost(record: SpanRecord, price: Price) -> float:
    return llm_cost(
        price,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cached_input_tokens=_first_int(record.attributes, CACHED_TOKEN_KEYS),
        reasoning_tokens=_first_int(record.attributes, REASONING_TOKEN_KEYS),
    )


def _first_int(attributes: dict[str, Any], keys: tuple[str, ...]) -> int | None:
    for key in keys:
        value = attributes.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return int(value)
    return None
