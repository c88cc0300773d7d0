"""How query rows become DataFrames and lookups: the small helpers the read modules share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import orjson
import pandas as pd
from django.db import connection
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast


def rows_frame(rows: Any, columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(rows), columns=list(columns))


def histogram_frame(rows: QuerySet[Any], fields: Sequence[str]) -> pd.DataFrame:
    """rows.values_list(*fields) as a DataFrame, `latency_histogram` read as text and parsed by
    orjson: the JSON field's json.loads was a quarter of the overview's and trends' CPU (a
    rollup's histogram holds tens of bins)."""
    names = ["histogram_text" if field == "latency_histogram" else field for field in fields]
    rows = rows.annotate(histogram_text=Cast("latency_histogram", TextField()))
    frame = rows_frame(rows.values_list(*names), fields)
    frame["latency_histogram"] = [
        orjson.loads(text) if text else {} for text in frame["latency_histogram"]
    ]
    return frame


def text_digest(value: Any) -> str:
    if value is None or value in ("", [], {}):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def json_contains_text(field: str, value: str) -> Q:
    """Rows whose JSON list `field` holds the string `value` (PostgreSQL `@>`; elsewhere the
    JSON-quoted string in the stored text)."""
    if connection.features.supports_json_field_contains:
        return Q(**{f"{field}__contains": [value]})
    return Q(**{f"{field}__icontains": json.dumps(value)})


def receiver_list(receivers: Any) -> list[str]:
    """A grouped row's receivers: a list, or its JSON text where the database groups by text."""
    if isinstance(receivers, str):
        receivers = json.loads(receivers)
    return [str(r) for r in receivers or []] or [""]
