"""dashboard.templatetags.observatory: number, duration and JSON formatting. Pure."""

from __future__ import annotations

import pytest

from dashboard.templatetags.observatory import compact, duration, percent, pretty_json, usd


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (None, "\u2013"),
        (0, "0 ms"),
        (850.4, "850 ms"),
        (1200, "1.2 s"),
        (185_000, "3m 05s"),
        (7_800_000, "2h 10m"),
    ],
)
def test_durations_read_as_short_human_units(ms: float | None, text: str) -> None:
    assert duration(ms) == text


def test_costs_show_four_decimals_below_a_dollar_and_two_above() -> None:
    assert [usd(0), usd(0.00123), usd(12.345), usd(None)] == ["$0", "$0.0012", "$12.35", "\u2013"]


def test_counts_are_shortened_and_ratios_become_percentages() -> None:
    assert [compact(950), compact(12_345), compact(4_500_000)] == ["950", "12.3k", "4.5M"]
    assert percent(0.1234) == "12.3%"


def test_pretty_json_indents_objects_and_parses_json_text_but_keeps_other_text() -> None:
    assert pretty_json({"b": 1, "a": "<x>"}) == '{\n  "b": 1,\n  "a": "<x>"\n}'
    assert pretty_json('{"a": [1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert pretty_json("not json {") == "not json {"
