"""A list's CSV straight from PostgreSQL: `COPY (SELECT …) TO STDOUT` through psycopg 3, each
cell written in SQL exactly as analytics/safe_csv.py writes it (formula-safe), so a million-row
export costs the database's time rather than a Python serializer call per row (bench/README.md,
"Scale")."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

import psycopg
from django.db import connection
from django.db.models import QuerySet
from rest_framework import serializers

from analytics.safe_csv import FORMULA_PREFIXES, csv_rows

# Blocks of about this many bytes go to the response: one write per row would cost more than
# the row.
BLOCK_BYTES = 256 * 1024

# The SQL of one cell, by the serializer field's type; {c} is the quoted column. Text: empty is
# NULL (COPY writes NULL unquoted, as csv.writer writes ""), a formula prefix gets a leading '.
# Floats as Python's repr: 523.0 not 523, nan/inf. Times as DRF's isoformat: microseconds only
# when there are some, and Z.
_PREFIXES = ", ".join(
    "E'" + p.replace("\t", "\\t").replace("\r", "\\r") + "'" for p in FORMULA_PREFIXES
)
_TEXT = (
    "CASE WHEN {c} = '' THEN NULL"
    f" WHEN left({{c}}, 1) IN ({_PREFIXES}) THEN '''' || {{c}} ELSE {{c}} END"
)
_FLOAT = (
    "CASE WHEN {c} = trunc({c}) AND abs({c}) < 1e16 THEN trunc({c})::numeric::text || '.0'"
    " WHEN {c} = 'NaN' THEN 'nan' WHEN {c} = 'Infinity' THEN 'inf'"
    " WHEN {c} = '-Infinity' THEN '-inf' ELSE {c}::text END"
)
_DATETIME = (
    "to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"
    " || CASE WHEN mod(date_part('microseconds', {c})::bigint, 1000000) = 0 THEN ''"
    " ELSE to_char({c} AT TIME ZONE 'UTC', '.US') END || 'Z'"
)
_BOOL = "CASE WHEN {c} THEN 'true' WHEN NOT {c} THEN 'false' END"
CELL_SQL: tuple[tuple[type[serializers.Field[Any, Any, Any, Any]], str], ...] = (
    (serializers.BooleanField, _BOOL),
    (serializers.DateTimeField, _DATETIME),
    (serializers.FloatField, _FLOAT),
    (serializers.IntegerField, "{c}"),
    (serializers.ChoiceField, _TEXT),
    (serializers.CharField, _TEXT),
)


def cell_sql(field: serializers.Field[Any, Any, Any, Any]) -> str | None:
    """The SQL template of a serializer field's cell, or None for a type COPY cannot write as
    the serializer would (JSON, method fields, nested serializers)."""
    for kind, template in CELL_SQL:
        if isinstance(field, kind):
            return template
    return None


def can_copy(queryset: QuerySet[Any], serializer: serializers.Serializer[Any]) -> bool:
    """Whether the database is PostgreSQL and every field of this serializer is a column or
    annotation of the queryset that COPY can write."""
    columns = {field.name for field in queryset.model._meta.concrete_fields}
    columns |= {field.attname for field in queryset.model._meta.concrete_fields}
    columns |= set(queryset.query.annotations)
    return connection.vendor == "postgresql" and all(
        cell_sql(field) is not None and field.source in columns
        for field in serializer.fields.values()
    )


def copy_csv(
    queryset: QuerySet[Any], serializer: serializers.Serializer[Any], header: Sequence[str]
) -> Iterator[bytes]:
    """The header, then every row of the (filtered, ordered) queryset as CSV lines ending in
    CRLF, like csv_rows(). Lazy: rows are read from the server as the response is written, so
    memory stays flat however many rows there are. Only for can_copy() serializers."""
    fields = [serializer.fields[name] for name in header]
    # A bound field always has a source (its name unless declared); the stubs allow None.
    sources = [cast(str, field.source) for field in fields]
    inner, params = queryset.values(*sources).query.sql_with_params()
    cells = ", ".join(
        str(cell_sql(field)).format(c=connection.ops.quote_name(source))
        for field, source in zip(fields, sources, strict=True)
    )
    yield next(iter(csv_rows(header, []))).encode()
    with connection.cursor() as cursor:
        # COPY takes no bound parameters: psycopg quotes them into the text (as Django's
        # client-side binding does), and Django's debug cursor still logs the statement.
        select = psycopg.ClientCursor(connection.connection).mogrify(inner, params)
        # A subquery's order is kept by a plain SELECT over it (no join, no aggregate).
        statement = f"COPY (SELECT {cells} FROM ({select}) AS rows) TO STDOUT WITH (FORMAT csv)"
        yield from _blocks(cursor.copy(statement))


def _blocks(copying: Any) -> Iterator[bytes]:
    with copying as copy:
        block: list[Any] = []
        size = 0
        for row in copy:
            # The server sends one row per message, ending in "\n"; csv.writer ends lines
            # in "\r\n".
            block.append(row[:-1])
            size += len(row)
            if size >= BLOCK_BYTES:
                yield b"\r\n".join(block) + b"\r\n"
                block, size = [], 0
        if block:
            yield b"\r\n".join(block) + b"\r\n"
