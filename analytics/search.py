"""Full-text search over what agents said: prompts, completions, tool inputs and outputs
(span payloads), transcript lines and message contents.

The index is a table of its own (`analytics_searchentry`, one row per span, line or message with
text), kept by the summary task after each ingest batch (`index_sessions`), not by the ingest
request: computing a text vector and inserting it into a GIN index costs PostgreSQL about
100 µs per span (bench/README.md, "Search index"), more than the whole ingest request spends
per span, so it runs where a slow step delays nothing. PostgreSQL keeps a `tsvector` per entry
(GIN index, `websearch_to_tsquery`); SQLite, the embedded default, an FTS5 table beside it.
Each entry's vector holds only the strings its session had not said before (agents resend the
system prompt and the conversation on every call: analytics/search_text.py).

Each entry keeps a signature of its source row, so a session's later batches read and index
only the rows whose text changed (a span's completion arriving after its prompt). Queries are
scoped to the caller's projects and newest first; snippets come back with the matches between
private-use markers, which `snippet_html` turns into `<mark>` after escaping everything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection
from django.urls import reverse
from django.utils.dateparse import parse_datetime

from analytics.search_index import (
    _KIND_CODES,
    _KIND_NAMES,
    _SPAN_FIELDS,
    _SQLITE_COLUMNS,
    _SQLITE_KIND_COLUMNS,
    KINDS,
)
from analytics.search_query import (
    MARK_END,
    MARK_START,
    Query,
    _match_count,
    marked_fragment,
    snippet_html,
)
from analytics.search_text import (
    MAX_FIELD_CHARS,
)

MAX_RESULTS = 10_000


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # span, line or message
    target_id: int
    session_id: int
    session_external_id: str
    session_name: str
    project_slug: str
    at: datetime
    field: str  # prompt, completion, params, returns, text or content
    snippet: str  # escaped HTML with <mark> around the matches

    @property
    def url(self) -> str:
        if self.kind == "span":
            return reverse("dashboard:span-detail", args=[self.session_id, self.target_id])
        if self.kind == "line":
            return reverse("dashboard:session-line", args=[self.session_id, self.target_id])
        return reverse("dashboard:message-detail", args=[self.target_id])


def search(
    project_ids: Sequence[int],
    query: Query,
    *,
    kinds: Sequence[str] = KINDS,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Hit]:
    """Entries of these projects that match, newest first, with their snippets."""
    if not project_ids or not kinds or limit <= 0:
        return []
    codes = [_KIND_CODES[kind] for kind in kinds]
    if connection.vendor == "postgresql":
        return _search_postgresql(list(project_ids), query, codes, after, before, limit, offset)
    return _search_sqlite(list(project_ids), query, codes, after, before, limit, offset)


_HIT_SELECT = "e.kind, e.target_id, e.session_id, s.external_id, s.name, pr.slug, e.at"


_HIT_TABLES = (
    "analytics_searchentry e JOIN ingest_session s ON s.id = e.session_id"
    " JOIN ingest_project pr ON pr.id = e.project_id"
)


def _time_filter(after: datetime | None, before: datetime | None) -> tuple[str, list[Any]]:
    sql = ""
    params: list[Any] = []
    if after is not None:
        sql, params = sql + " AND e.at >= %s", [*params, after]
    if before is not None:
        sql, params = sql + " AND e.at < %s", [*params, before]
    return sql, params


_HEADLINE = (
    f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=10, "
    'MaxFragments=2, FragmentDelimiter=" … "'
)


def _search_postgresql(
    project_ids: list[int],
    query: Query,
    codes: list[int],
    after: datetime | None,
    before: datetime | None,
    limit: int,
    offset: int,
) -> list[Hit]:
    times, time_params = _time_filter(after, before)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_HIT_SELECT} FROM {_HIT_TABLES} "
            "WHERE e.document @@ websearch_to_tsquery('english', %s) "
            f"AND e.project_id = ANY(%s) AND e.kind = ANY(%s){times} "
            "ORDER BY e.at DESC, e.id DESC LIMIT %s OFFSET %s",
            [query.text, project_ids, codes, *time_params, limit, offset],
        )
        rows = cursor.fetchall()
        snippets = _pg_snippets(cursor, query, rows)
    return [
        Hit(_KIND_NAMES[r[0]], r[1], r[2], r[3], r[4], r[5], r[6], *snippets[(r[0], r[1])])
        for r in rows
    ]


def _pg_snippets(
    cursor: Any, query: Query, rows: list[tuple[Any, ...]]
) -> dict[tuple[int, int], tuple[str, str]]:
    """The highlighted part of each hit's text, read back from where the text lives."""
    found: dict[tuple[int, int], tuple[str, str]] = {(r[0], r[1]): ("", "") for r in rows}
    by_kind: dict[int, list[int]] = {}
    for row in rows:
        by_kind.setdefault(row[0], []).append(row[1])
    tsquery = "websearch_to_tsquery('english', %s)"
    if by_kind.get(1):
        headlines = ", ".join(
            f"CASE WHEN {f} IS NULL OR pg_column_size({f}) > {MAX_FIELD_CHARS} THEN NULL "
            f"ELSE ts_headline('english', {f}, {tsquery}, %s) END"
            for f in _SPAN_FIELDS
        )
        cursor.execute(
            f"SELECT span_id, {headlines} FROM ingest_spanpayload WHERE span_id = ANY(%s)",
            [*([query.text, _HEADLINE] * len(_SPAN_FIELDS)), by_kind[1]],
        )
        for span_id, *fields in cursor.fetchall():
            # The field that holds the most of the words found, the first of equals.
            fragments = [
                (name, marked_fragment(v)) for name, v in zip(_SPAN_FIELDS, fields, strict=True)
            ]
            name, fragment = max(fragments, key=lambda item: _match_count(item[1]))
            found[(1, span_id)] = (name, snippet_html(fragment))
    if by_kind.get(2):
        cursor.execute(
            f"SELECT id, ts_headline('english', left(text, {MAX_FIELD_CHARS}), {tsquery}, %s) "
            "FROM ingest_transcriptline WHERE id = ANY(%s)",
            [query.text, _HEADLINE, by_kind[2]],
        )
        for line_id, text in cursor.fetchall():
            found[(2, line_id)] = ("text", snippet_html(text))
    if by_kind.get(3):
        cursor.execute(
            f"SELECT message_id, ts_headline('english', content, {tsquery}, %s) "
            "FROM ingest_messagecontent WHERE message_id = ANY(%s)",
            [query.text, _HEADLINE, by_kind[3]],
        )
        for message_id, value in cursor.fetchall():
            found[(3, message_id)] = ("content", snippet_html(marked_fragment(value)))
    return found


def _search_sqlite(
    project_ids: list[int],
    query: Query,
    codes: list[int],
    after: datetime | None,
    before: datetime | None,
    limit: int,
    offset: int,
) -> list[Hit]:
    times, time_params = _time_filter(after, before)
    projects = ", ".join(["%s"] * len(project_ids))
    kinds = ", ".join(["%s"] * len(codes))
    with connection.cursor() as cursor:
        # The full-text match runs once, as a set (joined row by row, SQLite ran the match
        # again for every entry of the projects: seconds for a query that found nothing).
        cursor.execute(
            f"SELECT e.id, {_HIT_SELECT} FROM {_HIT_TABLES} WHERE e.id IN (SELECT rowid FROM "
            "analytics_searchfts WHERE analytics_searchfts MATCH %s) "
            f"AND e.project_id IN ({projects}) AND e.kind IN ({kinds}){times} "
            "ORDER BY e.at DESC, e.id DESC LIMIT %s OFFSET %s",
            [query.fts5, *project_ids, *codes, *time_params, limit, offset],
        )
        rows = cursor.fetchall()
        snippets = _sqlite_snippets(cursor, query, [row[0] for row in rows])
    hits = []
    for entry, *row in rows:
        kind = _KIND_NAMES[row[0]]
        by_column = snippets.get(entry, {})
        # The field that holds the most of the words found, the first of equals.
        field = max(
            _SQLITE_KIND_COLUMNS[kind], key=lambda name: _match_count(by_column.get(name) or "")
        )
        hits.append(
            Hit(
                kind,
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                _aware(row[6]),
                field,
                snippet_html(by_column.get(field) or ""),
            )
        )
    return hits


def _sqlite_snippets(cursor: Any, query: Query, entries: list[int]) -> dict[int, dict[str, str]]:
    """Each entry's marked snippet per column, for the page of hits only."""
    if not entries:
        return {}
    snippets = ", ".join(
        f"snippet(analytics_searchfts, {index}, %s, %s, ' … ', 24)"
        for index in range(len(_SQLITE_COLUMNS))
    )
    cursor.execute(
        f"SELECT rowid, {snippets} FROM analytics_searchfts WHERE analytics_searchfts MATCH %s "
        f"AND rowid IN ({', '.join(['%s'] * len(entries))})",
        [*([MARK_START, MARK_END] * len(_SQLITE_COLUMNS)), query.fts5, *entries],
    )
    return {
        rowid: dict(zip(_SQLITE_COLUMNS, texts, strict=True)) for rowid, *texts in cursor.fetchall()
    }


def _aware(value: Any) -> datetime:
    """SQLite answers raw SQL datetimes as text or naive values; they are stored in UTC."""
    moment = parse_datetime(value) if isinstance(value, str) else value
    if not isinstance(moment, datetime):
        raise ValueError(f"not a datetime from the database: {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
