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

from analytics.search_text import (
    MAX_FIELD_CHARS,
    EntryText,
    first_sayings,
    json_strings,
    pack,
    unpack,
)

MAX_QUERY_CHARS = 300
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

_SPAN_FIELDS = ("prompt", "completion", "params", "returns")
# The FTS5 table has a column per field a hit can name (migration 0006), so a snippet can say
# where the words were; each kind fills its own columns.
_SQLITE_COLUMNS = (*_SPAN_FIELDS, "text", "content")
_SQLITE_KIND_COLUMNS = {"span": _SPAN_FIELDS, "line": ("text",), "message": ("content",)}


@dataclass(frozen=True, slots=True)
class _Source:
    """Where one kind's rows with text are, and how to read them: `facts` (id, project,
    session, time, signature) without reading the text, `texts` (id, then one JSON text or
    plain text per field) for the rows that changed."""

    rows: str  # FROM … WHERE, the session column named `{alias}.session_id`
    alias: str
    at: str
    pg_signature: str
    sqlite_signature: str
    texts: str  # SELECT id, fields FROM table WHERE id IN …
    is_json: bool = True


# PostgreSQL's signature is the row version of the text's row (xmin): it changes whenever the
# row is written, and reading it reads none of the text, where a digest of the text had to
# detoast every prompt of the session again on each of its batches. SQLite keeps sizes and a
# prefix.
_SOURCES = {
    "span": _Source(
        rows="ingest_span s JOIN ingest_spanpayload p ON p.span_id = s.id "
        "WHERE (p.prompt IS NOT NULL OR p.completion IS NOT NULL "
        "OR p.params IS NOT NULL OR p.returns IS NOT NULL)",
        alias="s",
        at="s.started_at",
        pg_signature="p.xmin::text",
        sqlite_signature="coalesce(length(p.prompt), -1) || '.' || "
        "coalesce(length(p.completion), -1) || '.' || coalesce(length(p.params), -1) || '.' || "
        "coalesce(length(p.returns), -1) || '.' || coalesce(substr(p.completion, 1, 64), '')",
        texts="SELECT span_id, {prompt}, {completion}, {params}, {returns} "
        "FROM ingest_spanpayload WHERE span_id {ids}",
    ),
    "line": _Source(
        rows="ingest_transcriptline l WHERE l.text <> ''",
        alias="l",
        at="l.at",
        pg_signature="l.xmin::text",
        sqlite_signature="length(l.text) || '.' || substr(l.text, 1, 64)",
        texts="SELECT id, text FROM ingest_transcriptline WHERE id {ids}",
        is_json=False,
    ),
    "message": _Source(
        rows="ingest_message m JOIN ingest_messagecontent c ON c.message_id = m.id "
        "WHERE c.content IS NOT NULL",
        alias="m",
        at="m.started_at",
        pg_signature="c.xmin::text",
        sqlite_signature="length(c.content) || '.' || substr(c.content, 1, 64)",
        texts="SELECT message_id, {content} FROM ingest_messagecontent WHERE message_id {ids}",
    ),
}


@dataclass(slots=True)
class _Row:
    """A row with text as it is now, and its entry as stored (entry None: not indexed yet)."""

    kind: str
    target_id: int
    project_id: int
    session_id: int
    at: Any
    signature: str
    entry: int | None = None
    stored_session: int | None = None
    stored_said: frozenset[int] = frozenset()


def index_sessions(session_pks: Iterable[int]) -> int:
    """Bring these sessions' entries up to date with their text; returns entries written.
    Each distinct string of a session is indexed once, at the first entry that said it
    (analytics/search_text.py); only rows whose text changed are read."""
    pks = sorted(set(session_pks))
    if not pks:
        return 0
    # wrap_database_errors: psycopg's own errors (the cursor below) reach callers as Django's.
    with transaction.atomic(), connection.wrap_database_errors, _index_cursor() as cursor:
        return _index(cursor, pks)


def _index_cursor() -> Any:
    """On PostgreSQL a psycopg cursor that binds parameters on the server, in binary: Django's
    cursor quotes every value into the SQL text in Python, and the server then parses it back;
    for the texts of the changed entries that was most of the indexing's CPU on both sides."""
    if connection.vendor != "postgresql":
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _index(cursor: Any, pks: list[int]) -> int:
    stored = _stored_entries(cursor, pks)
    rows = [row for kind in KINDS for row in _facts(cursor, kind, pks)]
    changed: list[_Row] = []
    seen: dict[int, set[int]] = {}  # what the unchanged entries of each session said first
    for row in rows:
        found = stored.pop((row.kind, row.target_id), None)
        if found is not None:
            row.entry, row.stored_session, signature, row.stored_said = found
            if signature == row.signature and row.stored_session == row.session_id:
                seen.setdefault(row.session_id, set()).update(row.stored_said)
                continue
        changed.append(row)
    _find_moved_entries(cursor, [row for row in changed if row.entry is None])
    lost = _drop_gone(cursor, stored)  # entries of these sessions whose row is gone
    documents = _documents(cursor, changed, seen)
    for row, document in zip(changed, documents, strict=True):
        if row.stored_session is not None and row.stored_session != row.session_id:
            lost.setdefault(row.stored_session, set()).update(row.stored_said)
        elif row.stored_said - document.strings:
            lost.setdefault(row.session_id, set()).update(row.stored_said - document.strings)
    _write(cursor, changed, documents)
    rebuilt = _sessions_to_rebuild(cursor, lost)
    if not rebuilt:
        return len(changed)
    # A string an entry said first is gone from it but still held by others, which do not
    # index it: index those sessions again from the start (rare: text replaced or moved).
    placeholders = ", ".join(["%s"] * len(rebuilt))
    cursor.execute(
        f"DELETE FROM analytics_searchentry WHERE session_id IN ({placeholders})", rebuilt
    )
    kept = [row for row in changed if row.session_id not in rebuilt]
    return len(kept) + _index(cursor, rebuilt)


def _members(values: list[int]) -> tuple[str, list[Any]]:
    """`IN (…)` for these ids: one array parameter on PostgreSQL (a placeholder per id was
    parsed again on both sides for every statement), placeholders on SQLite."""
    if connection.vendor == "postgresql":
        return "= ANY(%s)", [values]
    return f"IN ({', '.join(['%s'] * len(values))})", list(values)


def _stored_entries(
    cursor: Any, pks: list[int]
) -> dict[tuple[str, int], tuple[int, int, str, frozenset[int]]]:
    """(kind, target) → (entry id, session, signature, digests said) of these sessions."""
    placeholders = ", ".join(["%s"] * len(pks))
    cursor.execute(
        "SELECT kind, target_id, id, session_id, signature, said FROM analytics_searchentry "
        f"WHERE session_id IN ({placeholders})",
        pks,
    )
    return {
        (_KIND_NAMES[kind], target): (entry, session, signature, frozenset(unpack(said)))
        for kind, target, entry, session, signature, said in cursor.fetchall()
    }


def _facts(cursor: Any, kind: str, pks: list[int]) -> list[_Row]:
    src = _SOURCES[kind]
    signature = src.pg_signature if connection.vendor == "postgresql" else src.sqlite_signature
    a = src.alias
    members, params = _members(pks)
    cursor.execute(
        f"SELECT {a}.id, {a}.project_id, {a}.session_id, {src.at}, {signature} FROM {src.rows} "
        f"AND {a}.session_id {members}",
        params,
    )
    return [_Row(kind, *row) for row in cursor.fetchall()]


def _find_moved_entries(cursor: Any, rows: list[_Row]) -> None:
    """Entries of rows that moved here from a session not being indexed."""
    for kind in KINDS:
        of_kind = {row.target_id: row for row in rows if row.kind == kind}
        targets = list(of_kind)
        for start in range(0, len(targets), 500):
            some = targets[start : start + 500]
            if connection.vendor == "postgresql":
                # A join with the ids probes the unique index once per id; `target_id = ANY(…)`
                # cost PostgreSQL ~29 µs per new span here, ~9 as a join (bench/README.md).
                cursor.execute(
                    "SELECT e.target_id, e.id, e.session_id, e.said "
                    "FROM unnest(%s::bigint[]) AS t(id) JOIN analytics_searchentry e "
                    "ON e.kind = %s::smallint AND e.target_id = t.id",
                    [some, _KIND_CODES[kind]],
                )
            else:
                members, params = _members(some)
                cursor.execute(
                    "SELECT target_id, id, session_id, said FROM analytics_searchentry "
                    f"WHERE kind = %s AND target_id {members}",
                    [_KIND_CODES[kind], *params],
                )
            for target, entry, session, said in cursor.fetchall():
                row = of_kind[target]
                row.entry, row.stored_session = entry, session
                row.stored_said = frozenset(unpack(said))


def _drop_gone(
    cursor: Any, left: dict[tuple[str, int], tuple[int, int, str, frozenset[int]]]
) -> dict[int, set[int]]:
    """Delete the entries whose span, line or message is gone (deleted, or moved to a session
    not being indexed); returns what they said first, by session."""
    lost: dict[int, set[int]] = {}
    gone = []
    for entry, session, _, said in left.values():
        gone.append(entry)
        lost.setdefault(session, set()).update(said)
    for start in range(0, len(gone), 500):
        some = gone[start : start + 500]
        placeholders = ", ".join(["%s"] * len(some))
        cursor.execute(f"DELETE FROM analytics_searchentry WHERE id IN ({placeholders})", some)
    return lost


def _documents(cursor: Any, changed: list[_Row], seen: dict[int, set[int]]) -> list[Any]:
    """Each changed row's document, the rows of a session in time order."""
    texts: dict[tuple[str, int], EntryText] = {}
    for kind in KINDS:
        targets = [row.target_id for row in changed if row.kind == kind]
        texts.update(((kind, t), text) for t, text in _texts(cursor, kind, targets).items())
    order = sorted(
        range(len(changed)),
        key=lambda i: (
            changed[i].session_id,
            str(changed[i].at),
            KINDS.index(changed[i].kind),
            changed[i].target_id,
        ),
    )
    documents: list[Any] = [None] * len(changed)
    by_session: dict[int, list[int]] = {}
    for i in order:
        by_session.setdefault(changed[i].session_id, []).append(i)
    for session, indexes in by_session.items():
        entries = [
            texts.get((changed[i].kind, changed[i].target_id), EntryText({})) for i in indexes
        ]
        for i, document in zip(indexes, first_sayings(entries, seen.get(session, ())), strict=True):
            documents[i] = document
    return documents


def _texts(cursor: Any, kind: str, targets: list[int]) -> dict[int, EntryText]:
    src = _SOURCES[kind]
    fields = _SQLITE_KIND_COLUMNS[kind]
    cast = "::text" if connection.vendor == "postgresql" else ""
    found: dict[int, EntryText] = {}
    for start in range(0, len(targets), 500):
        some = targets[start : start + 500]
        members, params = _members(some)
        sql = src.texts.format(
            ids=members,
            **{field: f"{field}{cast}" for field in ("prompt", "completion", "params", "returns")},
            content=f"content{cast}",
        )
        cursor.execute(sql, params)
        for target, *bodies in cursor.fetchall():
            strings = [
                json_strings(body) if src.is_json else ([body] if body else []) for body in bodies
            ]
            found[target] = EntryText(dict(zip(fields, strings, strict=True)))
    return found


def _write(cursor: Any, rows: list[_Row], documents: list[Any]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        _write_postgresql(cursor, rows, documents)
    else:
        _write_sqlite(cursor, rows, documents)


def _write_postgresql(cursor: Any, rows: list[_Row], documents: list[Any]) -> None:
    """One upsert of every changed entry; the text vector only of the strings it said first."""
    bodies = ["\n".join(text for text in d.texts.values() if text) for d in documents]
    cursor.execute(
        """
        INSERT INTO analytics_searchentry
            (project_id, session_id, kind, target_id, at, signature, strings, said, document)
        SELECT u.project_id, u.session_id, u.kind, u.target_id, u.at, u.signature, u.strings,
               u.said, CASE WHEN u.body = '' THEN ''::tsvector
                            ELSE to_tsvector('english', u.body) END
        FROM unnest(%b::bigint[], %b::bigint[], %b::smallint[], %b::bigint[], %b::timestamptz[],
                    %b::text[], %b::bytea[], %b::bytea[], %b::text[])
            AS u(project_id, session_id, kind, target_id, at, signature, strings, said, body)
        ON CONFLICT (kind, target_id) DO UPDATE SET
            session_id = EXCLUDED.session_id, at = EXCLUDED.at, signature = EXCLUDED.signature,
            strings = EXCLUDED.strings, said = EXCLUDED.said, document = EXCLUDED.document
        """,
        [
            [row.project_id for row in rows],
            [row.session_id for row in rows],
            [_KIND_CODES[row.kind] for row in rows],
            [row.target_id for row in rows],
            [row.at for row in rows],
            [row.signature for row in rows],
            [pack(d.strings) for d in documents],
            [pack(d.said) for d in documents],
            bodies,
        ],
    )


def _write_sqlite(cursor: Any, rows: list[_Row], documents: list[Any]) -> None:
    for row, document in zip(rows, documents, strict=True):
        facts = [row.session_id, row.at, row.signature, pack(document.strings), pack(document.said)]
        if row.entry is not None:
            cursor.execute("DELETE FROM analytics_searchfts WHERE rowid = %s", [row.entry])
            cursor.execute(
                "UPDATE analytics_searchentry SET session_id = %s, at = %s, signature = %s, "
                "strings = %s, said = %s WHERE id = %s",
                [*facts, row.entry],
            )
            entry = row.entry
        else:
            cursor.execute(
                "INSERT INTO analytics_searchentry (project_id, kind, target_id, session_id, at, "
                "signature, strings, said) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [row.project_id, _KIND_CODES[row.kind], row.target_id, *facts],
            )
            entry = cursor.lastrowid
        if any(document.texts.values()):
            columns = _SQLITE_KIND_COLUMNS[row.kind]
            cursor.execute(
                f"INSERT INTO analytics_searchfts (rowid, {', '.join(columns)}) "
                f"VALUES (%s{', %s' * len(columns)})",
                [entry, *(document.texts.get(column, "") for column in columns)],
            )


def _sessions_to_rebuild(cursor: Any, lost: dict[int, set[int]]) -> list[int]:
    """Sessions where a string some entry no longer says first is still held by another entry
    that does not index it."""
    wanted = {session: digests for session, digests in lost.items() if digests}
    if not wanted:
        return []
    placeholders = ", ".join(["%s"] * len(wanted))
    cursor.execute(
        "SELECT session_id, strings, said FROM analytics_searchentry "
        f"WHERE session_id IN ({placeholders})",
        list(wanted),
    )
    held: dict[int, set[int]] = {}
    said: dict[int, set[int]] = {}
    for session, strings, first in cursor.fetchall():
        held.setdefault(session, set()).update(unpack(strings))
        said.setdefault(session, set()).update(unpack(first))
    return sorted(
        session
        for session, digests in wanted.items()
        if (digests - said.get(session, set())) & held.get(session, set())
    )


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
