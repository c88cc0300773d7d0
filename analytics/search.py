"""Full-text search over what agents said: prompts, completions, tool inputs and outputs
(span payloads), transcript lines and message contents.

The index is a table of its own (`analytics_searchentry`, one row per span, line or message with
text), kept by the summary task after each ingest batch (`index_sessions`), not by the ingest
request: computing a text vector and inserting it into a GIN index costs PostgreSQL about
100 µs per span (bench/README.md, "Search index"), more than the whole ingest request spends
per span, so it runs where a slow step delays nothing. PostgreSQL keeps a `tsvector` per entry
(GIN index, `websearch_to_tsquery`); SQLite, the embedded default, an FTS5 table beside it.

Each entry keeps a signature of its source text, so a session's later batches re-index only the
rows whose text changed (a span's completion arriving after its prompt). Queries are scoped to
the caller's projects and newest first; snippets come back with the matches between private-use
markers, which `snippet_html` turns into `<mark>` after escaping everything else.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connection, transaction
from django.urls import reverse
from django.utils.dateparse import parse_datetime

MAX_QUERY_CHARS = 300
# A field's text past this many bytes is indexed from its first part only: PostgreSQL refuses a
# tsvector over 1 MB, and one huge prompt must never stop its session from being indexed.
MAX_FIELD_BYTES = 65536
MAX_RESULTS = 10_000

KINDS = ("span", "line", "message")
_KIND_CODES = {"span": 1, "line": 2, "message": 3}
_KIND_NAMES = {code: name for name, code in _KIND_CODES.items()}

MARK_START, MARK_END = "\ue000", "\ue001"
_MARKED = re.compile(f"{MARK_START}(.*?){MARK_END}", re.S)
_SPACES = re.compile(r"\s+")


class SearchError(ValueError):
    """A query that cannot be run; the message names what is wrong (shown as a 400)."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str  # as typed (PostgreSQL's websearch_to_tsquery reads it)
    fts5: str  # the same query in SQLite FTS5 syntax, every term quoted


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


# --- Queries as typed -------------------------------------------------------------------------

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


def parse_query(text: str) -> Query:
    """Web-search syntax, as Google and PostgreSQL read it: words (all must match), "a phrase",
    `or` between alternatives, `-word` to exclude. Refuses what would find nothing useful."""
    text = (text or "").strip()
    if not text:
        raise SearchError("q: type the words to search for.")
    if len(text) > MAX_QUERY_CHARS:
        raise SearchError(f"q: at most {MAX_QUERY_CHARS} characters.")
    if "\x00" in text:
        raise SearchError("q: may not contain NUL characters.")
    wanted: list[str] = []
    excluded: list[str] = []
    for negated, term in _terms(text):
        if term == "OR":
            if wanted and wanted[-1] != "OR":
                wanted.append("OR")
        else:
            (excluded if negated else wanted).append(term)
    while wanted and wanted[-1] == "OR":
        wanted.pop()
    if not wanted:
        raise SearchError("q: needs at least one word to find (not only words to exclude).")
    fts5 = " ".join(wanted) + "".join(f" NOT {term}" for term in excluded)
    return Query(text=text, fts5=fts5)


def _terms(text: str) -> Iterable[tuple[bool, str]]:
    """(excluded?, FTS5 term) for each word or phrase; "OR" for an `or` between them."""
    for match in _TOKEN.finditer(text):
        negated, phrase, word = bool(match.group(1)), match.group(2), match.group(3)
        if word is not None and word.lower() == "or":
            yield False, "OR"
            continue
        if word is not None and word.startswith("-") and len(word) > 1:
            negated, word = True, word[1:]
        term = _fts5_term(phrase if phrase is not None else word or "")
        if term is not None:
            yield negated, term


def _fts5_term(raw: str) -> str | None:
    """One quoted FTS5 string (a phrase when it holds several words), or None when it holds no
    letter or digit; quotes inside are doubled, so no input can change the query's syntax."""
    words = re.findall(r"\w+", raw)
    if not words:
        return None
    return '"' + " ".join(words).replace('"', '""') + '"'


def snippet_html(marked: str) -> str:
    """Escaped text with <mark> around the parts between the markers; stray markers dropped."""
    parts: list[str] = []
    position = 0
    for match in _MARKED.finditer(marked):
        parts.append(_plain(marked[position : match.start()]))
        parts.append(f"<mark>{_plain(match.group(1))}</mark>")
        position = match.end()
    parts.append(_plain(marked[position:]))
    return "".join(parts).strip()


def _plain(text: str) -> str:
    text = text.replace(MARK_START, "").replace(MARK_END, "")
    return html.escape(_SPACES.sub(" ", text))


def marked_fragment(value: Any) -> str:
    """The strings of a highlighted JSON value (PostgreSQL's ts_headline keeps JSON's shape)
    that hold a match, joined; "" when none does."""
    found: list[str] = []
    if isinstance(value, str):  # Django reads jsonb as text
        with contextlib.suppress(ValueError):
            value = json.loads(value)

    def walk(node: Any) -> None:
        if isinstance(node, str):
            if MARK_START in node:
                found.append(node)
        elif isinstance(node, dict):
            for item in node.values():
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(value)
    return " … ".join(_around_marks(text) for text in found[:2])


def _match_count(marked: str) -> int:
    return len({match.lower() for match in _MARKED.findall(marked)})


def _around_marks(text: str, words: int = 12) -> str:
    """The first match with a few words either side (PostgreSQL highlights JSON in full)."""
    start = text.find(MARK_START)
    end = text.find(MARK_END, start)
    before = text[:start].split()
    after = text[end + 1 :].split() if end >= 0 else []
    middle = text[start : end + 1] if end >= 0 else text[start:]
    head = ("… " if len(before) > words else "") + " ".join(before[-words:])
    tail = " ".join(after[:words]) + (" …" if len(after) > words else "")
    return f"{head} {middle} {tail}".strip()


# --- Keeping the index ------------------------------------------------------------------------


def index_sessions(session_pks: Iterable[int]) -> int:
    """Bring these sessions' entries up to date with their text; returns entries written."""
    pks = sorted(set(session_pks))
    if not pks:
        return 0
    if connection.vendor == "postgresql":
        return _index_postgresql(pks)
    return _index_sqlite(pks)


# Per kind, for PostgreSQL: where the rows with text are, their id, time and signature (a hash
# of their text, cheap beside the vector), and their text vector.
def _pg_json_vector(column: str) -> str:
    return (
        f"CASE WHEN {column} IS NULL THEN ''::tsvector "
        f"WHEN pg_column_size({column}) > {MAX_FIELD_BYTES} "
        f"THEN to_tsvector('english', left({column}::text, {MAX_FIELD_BYTES})) "
        f"ELSE jsonb_to_tsvector('english', {column}, '[\"string\"]') END"
    )


@dataclass(frozen=True, slots=True)
class _PgSource:
    alias: str
    tables: str
    where: str
    at: str
    signature: str
    document: str


_SPAN_FIELDS = ("prompt", "completion", "params", "returns")
_PG_SOURCES = {
    "span": _PgSource(
        alias="s",
        tables="ingest_span s JOIN ingest_spanpayload p ON p.span_id = s.id",
        where="(p.prompt IS NOT NULL OR p.completion IS NOT NULL OR p.params IS NOT NULL "
        "OR p.returns IS NOT NULL)",
        at="s.started_at",
        signature="hashtextextended(concat(p.prompt::text, '|', p.completion::text, '|', "
        "p.params::text, '|', p.returns::text), 0)::text",
        document=" || ".join(_pg_json_vector(f"p.{f}") for f in _SPAN_FIELDS),
    ),
    "line": _PgSource(
        alias="l",
        tables="ingest_transcriptline l",
        where="l.text <> ''",
        at="l.at",
        signature="hashtextextended(l.text, 0)::text",
        document=f"to_tsvector('english', left(l.text, {MAX_FIELD_BYTES}))",
    ),
    "message": _PgSource(
        alias="m",
        tables="ingest_message m JOIN ingest_messagecontent c ON c.message_id = m.id",
        where="c.content IS NOT NULL",
        at="m.started_at",
        signature="hashtextextended(c.content::text, 0)::text",
        document=_pg_json_vector("c.content"),
    ),
}


def _index_postgresql(pks: list[int]) -> int:
    written = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, src in _PG_SOURCES.items():
            # The vector (the costly part) is computed only for rows whose text or session
            # changed since they were indexed.
            cursor.execute(
                f"""
                WITH src AS (
                    SELECT {src.alias}.id AS target_id, {src.alias}.project_id,
                           {src.alias}.session_id, {src.at} AS at, {src.signature} AS signature
                    FROM {src.tables}
                    WHERE {src.alias}.session_id = ANY(%(pks)s) AND {src.where}
                ), changed AS (
                    SELECT src.* FROM src LEFT JOIN analytics_searchentry e
                      ON e.kind = %(kind)s AND e.target_id = src.target_id
                    WHERE e.signature IS DISTINCT FROM src.signature
                       OR e.session_id <> src.session_id
                )
                INSERT INTO analytics_searchentry
                    (project_id, session_id, kind, target_id, at, signature, document)
                SELECT todo.project_id, todo.session_id, %(kind)s, todo.target_id, todo.at,
                       todo.signature, (SELECT {src.document} FROM {src.tables}
                                        WHERE {src.alias}.id = todo.target_id)
                FROM changed todo
                ON CONFLICT (kind, target_id) DO UPDATE SET
                    session_id = EXCLUDED.session_id, at = EXCLUDED.at,
                    signature = EXCLUDED.signature, document = EXCLUDED.document
                """,
                {"pks": pks, "kind": _KIND_CODES[kind]},
            )
            written += cursor.rowcount
        _drop_orphans(cursor, pks)
    return written


_SOURCE_TABLES = {
    "span": "ingest_span",
    "line": "ingest_transcriptline",
    "message": "ingest_message",
}


def _drop_orphans(cursor: Any, pks: list[int]) -> None:
    """Entries whose span, line or message is gone (deleted, or moved to another session)."""
    placeholders = ", ".join(["%s"] * len(pks))
    orphans: list[int] = []
    for kind, table in _SOURCE_TABLES.items():
        cursor.execute(
            f"SELECT e.id FROM analytics_searchentry e WHERE e.session_id IN ({placeholders}) "
            f"AND e.kind = %s AND NOT EXISTS (SELECT 1 FROM {table} t "
            "WHERE t.id = e.target_id AND t.session_id = e.session_id)",
            [*pks, _KIND_CODES[kind]],
        )
        orphans += [row[0] for row in cursor.fetchall()]
    if not orphans:
        return
    gone = ", ".join(["%s"] * len(orphans))
    cursor.execute(f"DELETE FROM analytics_searchentry WHERE id IN ({gone})", orphans)


def _sqlite_json_text(column: str) -> str:
    return (
        f"coalesce((SELECT group_concat(value, ' ') FROM json_tree({column}) "
        "WHERE type = 'text'), '')"
    )


# The FTS5 table has a column per field a hit can name (migration 0006), so a snippet can say
# where the words were; each kind fills its own columns.
_SQLITE_COLUMNS = (*_SPAN_FIELDS, "text", "content")
_SQLITE_KIND_COLUMNS = {"span": _SPAN_FIELDS, "line": ("text",), "message": ("content",)}

# Per kind: the id column, the signature, the texts (one per FTS column of the kind) and the
# rows. Signatures are read first and the texts only of the rows whose signature changed, so a
# refresh of a session that got no new text reads no text (json_tree is most of the cost).
_SQLITE_SOURCES = {
    "span": (
        "s.id",
        "s.project_id, s.session_id, s.started_at, "
        "coalesce(length(p.prompt), -1) || '.' || coalesce(length(p.completion), -1) || '.' || "
        "coalesce(length(p.params), -1) || '.' || coalesce(length(p.returns), -1) || '.' || "
        "coalesce(substr(p.completion, 1, 64), '')",
        ", ".join(_sqlite_json_text(f"p.{f}") for f in _SPAN_FIELDS),
        "ingest_span s JOIN ingest_spanpayload p ON p.span_id = s.id "
        "WHERE (p.prompt IS NOT NULL OR p.completion IS NOT NULL "
        "OR p.params IS NOT NULL OR p.returns IS NOT NULL)",
    ),
    "line": (
        "l.id",
        "l.project_id, l.session_id, l.at, length(l.text) || '.' || substr(l.text, 1, 64)",
        "l.text",
        "ingest_transcriptline l WHERE l.text <> ''",
    ),
    "message": (
        "m.id",
        "m.project_id, m.session_id, m.started_at, "
        "length(c.content) || '.' || substr(c.content, 1, 64)",
        _sqlite_json_text("c.content"),
        "ingest_message m JOIN ingest_messagecontent c ON c.message_id = m.id "
        "WHERE c.content IS NOT NULL",
    ),
}


def _index_sqlite(pks: list[int]) -> int:
    written = 0
    placeholders = ", ".join(["%s"] * len(pks))
    with transaction.atomic(), connection.cursor() as cursor:
        for kind, (id_column, facts, texts, rows) in _SQLITE_SOURCES.items():
            code = _KIND_CODES[kind]
            cursor.execute(
                "SELECT target_id, id, session_id, signature FROM analytics_searchentry "
                f"WHERE kind = %s AND session_id IN ({placeholders})",
                [code, *pks],
            )
            stored = {row[0]: (row[1], (row[2], row[3])) for row in cursor.fetchall()}
            session_column = id_column.split(".")[0] + ".session_id"
            cursor.execute(
                f"SELECT {id_column}, {facts} FROM {rows} AND {session_column} IN ({placeholders})",
                pks,
            )
            changed = {
                row[0]: row[1:]
                for row in cursor.fetchall()
                if stored.get(row[0], (None, None))[1] != (row[2], row[4])
            }
            columns = _SQLITE_KIND_COLUMNS[kind]
            insert = (
                f"INSERT INTO analytics_searchfts (rowid, {', '.join(columns)}) "
                f"VALUES (%s{', %s' * len(columns)})"
            )
            targets = list(changed)
            for start in range(0, len(targets), 500):
                some = targets[start : start + 500]
                cursor.execute(
                    f"SELECT {id_column}, {texts} FROM {rows} "
                    f"AND {id_column} IN ({', '.join(['%s'] * len(some))})",
                    some,
                )
                for target, *bodies in cursor.fetchall():
                    project_id, session_id, at, signature = changed[target]
                    entry = stored.get(target, (None, None))[0]
                    if entry is not None:
                        cursor.execute("DELETE FROM analytics_searchfts WHERE rowid = %s", [entry])
                        cursor.execute(
                            "UPDATE analytics_searchentry SET session_id = %s, at = %s, "
                            "signature = %s WHERE id = %s",
                            [session_id, at, signature, entry],
                        )
                    else:
                        cursor.execute(
                            "INSERT INTO analytics_searchentry "
                            "(project_id, session_id, kind, target_id, at, signature) "
                            "VALUES (%s, %s, %s, %s, %s, %s)",
                            [project_id, session_id, code, target, at, signature],
                        )
                        entry = cursor.lastrowid
                    cursor.execute(insert, [entry, *(body[:MAX_FIELD_BYTES] for body in bodies)])
                    written += 1
        _drop_orphans(cursor, pks)
    return written


# --- Searching --------------------------------------------------------------------------------


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
    sql, params = "", []
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
            f"CASE WHEN {f} IS NULL OR pg_column_size({f}) > {MAX_FIELD_BYTES} THEN NULL "
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
            f"SELECT id, ts_headline('english', left(text, {MAX_FIELD_BYTES}), {tsquery}, %s) "
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
            Hit(kind, *row[1:6], _aware(row[6]), field, snippet_html(by_column.get(field) or ""))
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
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
