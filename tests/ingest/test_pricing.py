"""The model price table and LLM call costs, tested without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.formats.records import SpanRecord
from ingest.pricing import Price, default_prices, estimated_costs, llm_cost, price_for


def test_an_exact_model_name_wins_over_a_pattern() -> None:
    prices = {"gpt-4o*": Price(1, 1), "gpt-4o-mini": Price(2, 2)}
    assert price_for("gpt-4o-mini", prices) == Price(2, 2)
    assert price_for("GPT-4o-Mini", prices) == Price(2, 2)


def test_a_dated_model_matches_the_longest_pattern() -> None:
    prices = {"gpt-4o*": Price(1, 1), "gpt-4o-mini*": Price(2, 2)}
    assert price_for("gpt-4o-mini-2024-07-18", prices) == Price(2, 2)
    assert price_for("gpt-4o-2024-08-06", prices) == Price(1, 1)


def test_an_unknown_or_empty_model_has_no_price() -> None:
    assert price_for("my-local-model", default_prices()) is None
    assert price_for("", default_prices()) is None


def test_the_built_in_table_prices_the_common_models() -> None:
    for model in ("gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "gemini-2.0-flash"):
        assert price_for(model, default_prices()) is not None


def test_cost_is_per_million_tokens() -> None:
    price = Price(input=2.5, output=10.0)
    assert llm_cost(price, prompt_tokens=1000, completion_tokens=500) == pytest.approx(0.0075)


def test_cached_and_reasoning_tokens_are_billed_at_their_own_rates() -> None:
    price = Price(input=2.0, output=8.0, cached_input=0.5, reasoning=4.0)
    cost = llm_cost(
        price,
        prompt_tokens=1000,
        completion_tokens=1000,
        cached_input_tokens=400,
        reasoning_tokens=250,
    )
    expected = (600 * 2.0 + 400 * 0.5 + 750 * 8.0 + 250 * 4.0) / 1_000_000
    assert cost == pytest.approx(expected)


def test_cached_tokens_without_a_cached_rate_pay_the_full_input_price() -> None:
    price = Price(input=2.0, output=8.0)
    assert llm_cost(
        price, prompt_tokens=1000, completion_tokens=0, cached_input_tokens=400
    ) == pytest.approx(0.002)


def _call(kind: str = "llm", **fields: object) -> SpanRecord:
    values: dict[str, object] = {"model": "gpt-4o", "prompt_tokens": 1_000_000, **fields}
    return SpanRecord("r", "s", "span", kind, "call", datetime(2026, 12, 1, tzinfo=UTC), **values)  # type: ignore[arg-type]


def test_only_llm_calls_with_tokens_a_model_and_no_cost_of_their_own_are_priced() -> None:
    priced = _call()
    reported = _call(cost=0.5)
    tool = _call("tool")
    no_tokens = _call(prompt_tokens=None)
    unknown_model = _call(model="a-model-nobody-prices")
    records = [priced, reported, tool, no_tokens, unknown_model]
    assert [r.is_cost_missing for r in records] == [True, False, False, False, True]
    assert estimated_costs(records, default_prices()) == {id(priced): 2.50}


def test_an_estimate_bills_cached_input_tokens_named_by_any_convention() -> None:
    cached = _call(attributes={"llm.token_count.prompt_details.cache_read": 1_000_000})
    assert estimated_costs([cached], default_prices()) == {id(cached): 1.25}
