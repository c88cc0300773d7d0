"""Model prices and the cost of an LLM call from its tokens. Pure; the table is data.

Used by ingest/store.py for every LLM span that has tokens and no cost of its own.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PRICES_FILE = Path(__file__).resolve().parent / "data" / "model_prices.json"


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
    name = model.lower()
    lowered = {key.lower(): price for key, price in prices.items()}
    if name in lowered:
        return lowered[name]
    patterns = [
        key for key in lowered if ("*" in key or "?" in key) and fnmatch.fnmatchcase(name, key)
    ]
    if not patterns:
        return None
    return lowered[max(patterns, key=len)]


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
