"""The CSV writer, without a database: header, cell formats and formula neutralisation."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest

from analytics.safe_csv import csv_rows, neutralise_cell


def parse(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


@pytest.mark.parametrize("text", ["=cmd|' /C calc'!A0", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx"])
def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote(text: str) -> None:
    assert neutralise_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-3, -0.5, 0, 42, 1e-05])
def test_numbers_stay_numbers_even_when_negative(value: float) -> None:
    assert neutralise_cell(value) == value


def test_harmless_text_none_and_booleans_are_written_plainly() -> None:
    assert neutralise_cell("hello = world") == "hello = world"
    assert neutralise_cell(None) == ""
    assert neutralise_cell(True) == "true"
    assert neutralise_cell(False) == "false"


def test_lists_and_dicts_become_json_text() -> None:
    assert neutralise_cell(["a", "b"]) == '["a", "b"]'
    assert neutralise_cell({"k": "é"}) == '{"k": "é"}'


def test_rows_follow_the_header_and_missing_values_are_empty() -> None:
    lines = list(csv_rows(["id", "cost", "name"], [{"name": "=1+1", "id": "s1", "cost": -3}, {}]))

    assert parse(lines) == [["id", "cost", "name"], ["s1", "-3", "'=1+1"], ["", "", ""]]


def test_cells_with_commas_quotes_and_newlines_survive_a_round_trip() -> None:
    text = 'one, "two"\nthree'

    assert parse(list(csv_rows(["text"], [{"text": text}]))) == [["text"], [text]]


def test_rows_are_produced_lazily() -> None:
    def endless() -> Iterator[dict[str, int]]:
        n = 0
        while True:
            n += 1
            yield {"n": n}

    lines = csv_rows(["n"], endless())

    assert [next(lines) for _ in range(3)] == ["n\r\n", "1\r\n", "2\r\n"]
