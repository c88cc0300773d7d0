"""Keeping the full-text index (docs/architecture.md, "Search entry", "Said first"): each
session's texts read where they live, what each entry said first indexed, entries of moved or
deleted text dropped; a tsvector with a GIN index on PostgreSQL, an FTS5 table on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from analytics.search_text import (
    EntryText,
    first_sayings,
    json_strings,
    pack,
    unpack,
)

KINDS = ("span", "line", "message")


_KIND_CODES = {"span": 1, "line": 2, "message": 3}


_KIND_NAMES = {code: name for name, code in _KIND_CODES.items()}


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
    if connection.vendor != "postgresql":  # PostgreSQL's insert finds them (_write_postgresql)
        _find_moved_entries(cursor, [row for row in changed if row.entry is None])
    lost = _drop_gone(cursor, stored)  # entries of these sessions whose row is gone
    documents = _documents(cursor, changed, seen)
    _write(cursor, changed, documents)
    for row, document in zip(changed, documents, strict=True):
        if row.stored_session is not None and row.stored_session != row.session_id:
            lost.setdefault(row.stored_session, set()).update(row.stored_said)
        elif row.stored_said - document.strings:
            lost.setdefault(row.session_id, set()).update(row.stored_said - document.strings)
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
    """The new entries inserted, then the changed and moved ones upserted; the text vector only
    of the strings each said first. An insert that meets an entry is a row moved here from a
    session not being indexed: found that way, the unique index is probed once per row, where
    looking every new row up first cost PostgreSQL ~10-20 µs a span (bench/README.md, "Fourth
    pass": the planner hashed the whole table)."""
    new = [i for i, row in enumerate(rows) if row.entry is None]
    inserted = set(
        _upsert_entries(cursor, rows, documents, new, "NOTHING RETURNING kind, target_id")
    )
    moved = [i for i in new if (_KIND_CODES[rows[i].kind], rows[i].target_id) not in inserted]
    _find_moved_entries(cursor, [rows[i] for i in moved])  # their entries, what they said first
    _upsert_entries(
        cursor,
        rows,
        documents,
        sorted({i for i, row in enumerate(rows) if row.entry is not None}.union(moved)),
        "UPDATE SET session_id = EXCLUDED.session_id, at = EXCLUDED.at, "
        "signature = EXCLUDED.signature, strings = EXCLUDED.strings, said = EXCLUDED.said, "
        "document = EXCLUDED.document",
    )


def _upsert_entries(
    cursor: Any, rows: list[_Row], documents: list[Any], which: list[int], on_conflict: str
) -> list[tuple[int, int]]:
    """One INSERT of these rows' entries, `ON CONFLICT … DO {on_conflict}`; what it returns."""
    if not which:
        return []
    # In the unique index's order: two workers indexing overlapping sessions then wait for
    # each other's rows instead of deadlocking on them (seen once in bench/run_soak.sh).
    which = sorted(which, key=lambda i: (_KIND_CODES[rows[i].kind], rows[i].target_id))
    bodies = ["\n".join(text for text in documents[i].texts.values() if text) for i in which]
    some = [rows[i] for i in which]
    cursor.execute(
        f"""
        INSERT INTO analytics_searchentry
            (project_id, session_id, kind, target_id, at, signature, strings, said, document)
        SELECT u.project_id, u.session_id, u.kind, u.target_id, u.at, u.signature, u.strings,
               u.said, CASE WHEN u.body = '' THEN ''::tsvector
                            ELSE to_tsvector('english', u.body) END
        FROM unnest(%b::bigint[], %b::bigint[], %b::smallint[], %b::bigint[], %b::timestamptz[],
                    %b::text[], %b::bytea[], %b::bytea[], %b::text[])
            AS u(project_id, session_id, kind, target_id, at, signature, strings, said, body)
        ON CONFLICT (kind, target_id) DO {on_conflict}
        """,
        [
            [row.project_id for row in some],
            [row.session_id for row in some],
            [_KIND_CODES[row.kind] for row in some],
            [row.target_id for row in some],
            [row.at for row in some],
            [row.signature for row in some],
            [pack(documents[i].strings) for i in which],
            [pack(documents[i].said) for i in which],
            bodies,
        ],
    )
    return [tuple(row) for row in cursor.fetchall()] if "RETURNING" in on_conflict else []


def _write_sqlite(cursor: Any, rows: list[_Row], documents: list[Any]) -> None:
    """A few statements for any number of entries (executemany): one call of Django's cursor
    per entry was a third of SQLite's indexing (bench/README.md, "Search index", third pass)."""
    pairs = list(zip(rows, documents, strict=True))
    known = [(row, document) for row, document in pairs if row.entry is not None]
    new = [(row, document) for row, document in pairs if row.entry is None]
    if known:
        cursor.executemany(
            "DELETE FROM analytics_searchfts WHERE rowid = %s", [[row.entry] for row, _ in known]
        )
        cursor.executemany(
            "UPDATE analytics_searchentry SET session_id = %s, at = %s, signature = %s, "
            "strings = %s, said = %s WHERE id = %s",
            [[*_sqlite_facts(row, document), row.entry] for row, document in known],
        )
    if new:
        cursor.executemany(
            "INSERT INTO analytics_searchentry (project_id, kind, target_id, session_id, at, "
            "signature, strings, said) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                [row.project_id, _KIND_CODES[row.kind], row.target_id, *_sqlite_facts(row, d)]
                for row, d in new
            ],
        )
        ids = _sqlite_entry_ids(cursor, sorted({row.session_id for row, _ in new}))
        for row, _ in new:
            row.entry = ids[(_KIND_CODES[row.kind], row.target_id)]
    for kind, columns in _SQLITE_KIND_COLUMNS.items():
        texts = [
            [row.entry, *(document.texts.get(column, "") for column in columns)]
            for row, document in pairs
            if row.kind == kind and any(document.texts.values())
        ]
        if texts:
            cursor.executemany(
                f"INSERT INTO analytics_searchfts (rowid, {', '.join(columns)}) "
                f"VALUES (%s{', %s' * len(columns)})",
                texts,
            )


def _sqlite_facts(row: _Row, document: Any) -> list[Any]:
    return [row.session_id, row.at, row.signature, pack(document.strings), pack(document.said)]


def _sqlite_entry_ids(cursor: Any, sessions: list[int]) -> dict[tuple[int, int], int]:
    """(kind, target) → entry id of these sessions' entries."""
    ids: dict[tuple[int, int], int] = {}
    for start in range(0, len(sessions), 500):
        members, params = _members(sessions[start : start + 500])
        cursor.execute(
            f"SELECT kind, target_id, id FROM analytics_searchentry WHERE session_id {members}",
            params,
        )
        ids.update(((kind, target), entry) for kind, target, entry in cursor.fetchall())
    return ids


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
