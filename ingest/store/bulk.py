"""The set-based write engine the store modules share: binary COPY on PostgreSQL (with the column
types it needs), bulk INSERT elsewhere, one UPDATE for many rows, reads of stored rows by key.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

import orjson
from django.db import (
    connection,
)
from django.db.models import Field, ForeignKey, Model
from psycopg.types.json import set_json_dumps

from ingest import sql

M = TypeVar("M", bound=Model)


def stored_field(model: type[Model], name: str) -> Field[Any, Any]:
    """The field of a stored column (`get_field` also answers reverse relations, which have
    none); "pk" is the primary key's."""
    field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise LookupError(f"{model.__name__}.{name} is not a stored column")
    return field


def column_of(model: type[Model], name: str) -> str:
    """The database column of a model field."""
    column = stored_field(model, name).column
    assert column is not None  # stored_field refuses a field without one
    return column


def _stored_rows(
    model: type[M], key_fields: tuple[str, str], keys: set[tuple[int, str]], new_parents: set[int]
) -> dict[tuple[int, str], M]:
    """The rows of `model` already stored under these (parent pk, id) keys, `key_fields` naming
    the parent foreign key and the id field. Keys under a parent this batch created cannot have
    any and are not looked up: for a batch of new traces, no query at all."""
    parent, child = key_fields
    wanted = {key for key in keys if key[0] not in new_parents}
    if not wanted:
        return {}
    parents, children = sorted({k[0] for k in wanted}), sorted({k[1] for k in wanted})
    in_parents, parent_params = sql.in_values(f"t.{column_of(model, parent)}", parents)
    in_children, child_params = sql.in_values(f"t.{column_of(model, child)}", children)
    # Written out (ingest/sql.py): every request of a stored session runs this for its spans.
    rows = sql.select_rows(
        model, f"{in_parents} AND {in_children}", [*parent_params, *child_params]
    )
    found = {(getattr(row, f"{parent}_id"), getattr(row, child)): row for row in rows}
    return {key: row for key, row in found.items() if key in wanted}


# PostgreSQL type names for binary COPY, by Django field type (foreign keys: their target's).
COPY_TYPES = {
    "AutoField": "int4",
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "BooleanField": "bool",
    "CharField": "varchar",
    "DateTimeField": "timestamptz",
    "FloatField": "float8",
    "IntegerField": "int4",
    "JSONField": "jsonb",
    "TextField": "text",
}


def _copy_types(model: type[Model], columns: tuple[str, ...]) -> list[str]:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    types = []
    for name in columns:
        field = by_column[name]
        target = field.target_field if isinstance(field, ForeignKey) else field
        types.append(COPY_TYPES[target.get_internal_type()])
    return types


def _json_bytes(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # what orjson refuses (non-str keys, huge ints), json still writes
        return json.dumps(value, ensure_ascii=False, default=str).encode()


def _copy_rows(model: type[Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """PostgreSQL: rows of Python values (those of `columns`, in order; JSON columns take the
    objects) by binary COPY, which spares both sides the text escaping and parsing of the usual
    COPY and the per-row statements of an INSERT (bench/README.md)."""
    # wrap_database_errors turns psycopg's UniqueViolation into Django's IntegrityError, which
    # save_records() retries.
    with connection.cursor() as cursor, connection.wrap_database_errors:
        raw = cursor.cursor
        set_json_dumps(_json_bytes, raw)
        sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        with raw.copy(sql) as copy:
            copy.set_types(_copy_types(model, columns))
            for row in rows:
                copy.write_row(row)


def _update_rows(rows: Sequence[Model], names: Sequence[str]) -> None:
    """UPDATE these rows' columns in one executemany statement. bulk_update builds a CASE per
    column over every row, which cost seconds for a batch of merged messages (bench/README.md)."""
    if not rows:
        return
    model = type(rows[0])
    quote = connection.ops.quote_name
    fields = [stored_field(model, name) for name in names]
    assignments = ", ".join(f"{quote(column_of(model, name))} = %s" for name in names)
    pk_column = column_of(model, "pk")
    sql = f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {quote(pk_column)} = %s"
    params = [
        [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
        + [row.pk]
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


def _next_ids(model: type[Model], count: int) -> list[int]:
    """PostgreSQL: `count` ids from the model's id sequence, in one query."""
    with connection.cursor() as cursor:
        # The sequence is looked up once, in a materialized CTE: pg_get_serial_sequence() in
        # the select list ran once per row, ten times the cost of nextval() itself.
        cursor.execute(
            "WITH s AS MATERIALIZED "
            "(SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) "
            "SELECT nextval(s.seq) FROM s, generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _create(objs: Sequence[Model]) -> None:
    """bulk_create() for the store's own few-rows-per-batch inserts (sessions, agents, workflows),
    setting their pks. On PostgreSQL: ids from one nextval() query and a binary COPY of the
    instances' values, because Django's INSERT compile cost 0.9 ms of CPU for 8 sessions."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs)
        return
    fields = model._meta.concrete_fields
    for obj, pk in zip(objs, _next_ids(model, len(objs)), strict=True):
        obj.pk = pk
        obj._state.adding, obj._state.db = False, connection.alias
    rows = [tuple(field.pre_save(obj, True) for field in fields) for obj in objs]
    _copy_rows(model, tuple(column_of(model, field.name) for field in fields), rows)


def _insert_rows(model: type[Model], columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert plain tuples (values of these column names, in order): COPY on PostgreSQL, else
    bulk_create."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy_rows(model, columns, rows)
    else:
        model._default_manager.bulk_create(
            [model(**dict(zip(columns, row, strict=True))) for row in rows]
        )
