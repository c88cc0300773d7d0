"""Model prices and the cost of an LLM call from its tokens. Pure; the table is data.

Used by ingest/store.py for every LLM span that has tokens and no cost of its own.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import cache, lru_cache
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
