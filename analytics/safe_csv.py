"""CSV text from rows, safe to open in a spreadsheet: the one writer of the API's CSV lists and the
reports' tables (here, below both). Pure: no Django, no I/O."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Line:
    """A file-like object that hands back what csv.writer writes instead of storing it."""

    def write(self, text: str) -> str:
        return text


def neutralise_cell(value: Any) -> str | int | float:
    """One cell: numbers stay numbers, None is empty, lists and dicts are JSON text, and text
    that a spreadsheet would run as a formula gets a leading `'`."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value  # -3 is a number, not a formula
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, ensure_ascii=False, default=str)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_rows(header: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The header line, then one line per row (values taken by header name), lazily."""
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([neutralise_cell(row.get(name)) for name in header])
