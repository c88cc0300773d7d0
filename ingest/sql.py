"""Reads on the ingest hot path written as SQL, returning model instances like the ORM does.

The ORM compiles a query anew on every call: for a one-span OTLP request its compile of a dozen
small reads was most of the request's CPU (bench/README.md). These helpers build the same rows
from hand-written statements; use them only where a request pays for that compile.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar, cast

from django.db import connection
from django.db.models import Model

M = TypeVar("M", bound=Model)


@cache
def columns(model: type[Model], alias: str) -> str:
    """The model's concrete columns as `alias.column, ...`, in field order."""
    quote = connection.ops.quote_name
    # A concrete field always has a column; the stubs type Field.column for every field.
    return ", ".join(f"{alias}.{quote(cast(str, f.column))}" for f in model._meta.concrete_fields)


def field_count(model: type[Model]) -> int:
    return len(model._meta.concrete_fields)


@cache
def _converters(model: type[Model], vendor: str) -> list[tuple[Any, list[Any]]]:
    """(column expression, converters) per concrete field: the backend's (SQLite answers
    datetimes as text) and the field's own, as the ORM applies them."""
    out = []
    for f in model._meta.concrete_fields:
        column = f.get_col(model._meta.db_table)
        out.append(
            (column, connection.ops.get_db_converters(column) + f.get_db_converters(connection))
        )
    return out


def from_row(model: type[M], values: Sequence[Any]) -> M:
    """An instance from its concrete columns' values, converted as the ORM converts them."""
    fields = model._meta.concrete_fields
    converted = []
    for (column, converters), value in zip(
        _converters(model, connection.vendor), values, strict=True
    ):
        for converter in converters:
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


def placeholders(values: Sequence[Any]) -> str:
    """`(%s, %s, ...)` for an IN list of these values (portable: no arrays on SQLite)."""
    return "(" + ", ".join(["%s"] * len(values)) + ")"


def in_values(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (values)` and its parameters. On PostgreSQL one array parameter (`column =
    ANY(%s)`): psycopg dumps it at once and the statement text stays the same whatever the
    count, where an IN list of 500 placeholders was split and quoted value by value on every
    request (bench/README.md). SQLite has no arrays: an IN list there."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN {placeholders(values)}", list(values)


def select_rows(model: type[M], where: str, params: Sequence[Any]) -> list[M]:
    """SELECT every concrete column of `model`'s table WHERE `where` (aliased `t`)."""
    sql = f"SELECT {columns(model, 't')} FROM {model._meta.db_table} t WHERE {where}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [from_row(model, row) for row in cursor.fetchall()]
