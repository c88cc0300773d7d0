"""Pure: what of a session's text the search index has to read, each distinct string once.

Agents send the same text over and over: every LLM call repeats the system prompt and the whole
conversation so far, so a session of n calls holds each message up to n times. The index reads
every string of the session (the strings inside JSON values, not the keys) but indexes each one
only at the first entry that said it, in the order entries are indexed (time order within a
call): later entries are found through that first one. An entry keeps the digests of all its
strings and of those it was the first to say, so the next batch of the session indexes only
what is new, and a changed entry can tell whether text it said first is still said elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

# A field's new text past this many characters is indexed from its first part only: PostgreSQL
# refuses a tsvector over 1 MB, and one huge prompt must never stop its session from being
# indexed.
MAX_FIELD_CHARS = 65536


@dataclass(frozen=True, slots=True)
class EntryText:
    """One span, line or message as read: its strings per field (prompt, completion, params,
    returns; text; content), in order."""

    fields: dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class EntryDocument:
    """What to index for one entry: the text of the strings it said first, per field (joined
    by newlines, at most MAX_FIELD_CHARS each), the digests of every distinct string it holds,
    and of those it said first."""

    texts: dict[str, str]
    strings: frozenset[int]
    said: frozenset[int]


# Every JSON string literal, with the colon after it when it is a key. Read from the JSON text by
# one regular expression (unrolled, so it scans in C) instead of parsing it and walking the
# objects in Python, which was most of the indexing's own CPU.
_STRING_LITERAL = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"(\s*:)?')


def json_strings(raw: str | None) -> list[str]:
    """The strings of a JSON text (object values and list items, at any depth, not keys), in
    order; [] for None. Text that is not JSON is one string."""
    if not raw:
        return []
    if raw[0] not in '"[{':
        return [] if _is_json_scalar(raw) else [raw]
    found = []
    for literal, is_key in _STRING_LITERAL.findall(raw):
        if is_key:
            continue
        if "\\" in literal:
            try:
                literal = orjson.loads(f'"{literal}"')
            except orjson.JSONDecodeError:
                continue
        if literal:
            found.append(literal)
    return found


def _is_json_scalar(raw: str) -> bool:
    try:
        orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return True


def text_digest(text: str) -> int:
    """A stable 64-bit digest of a string (Python's hash() changes from process to process)."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


def first_sayings(entries: Sequence[EntryText], seen: Iterable[int]) -> list[EntryDocument]:
    """Each entry's document, in the order given, given the digests its session's other
    entries already said: a string is indexed at the first entry that holds it."""
    said_before = set(seen)
    digests: dict[str, int] = {}  # the conversation repeats: digest each string once
    documents = []
    for entry in entries:
        texts: dict[str, str] = {}
        strings: set[int] = set()
        said: set[int] = set()
        for field, values in entry.fields.items():
            new: list[str] = []
            for value in values:
                digest = digests.get(value)
                if digest is None:
                    digest = digests[value] = text_digest(value)
                strings.add(digest)
                if digest not in said_before:
                    said_before.add(digest)
                    said.add(digest)
                    new.append(value)
            texts[field] = "\n".join(new)[:MAX_FIELD_CHARS]
        documents.append(EntryDocument(texts, frozenset(strings), frozenset(said)))
    return documents


def pack(digests: Iterable[int]) -> bytes:
    """Digests as stored (8 bytes each, sorted, so equal sets are equal bytes)."""
    return array("q", sorted(digests)).tobytes()


def unpack(stored: bytes | memoryview | None) -> set[int]:
    packed = array("q")
    packed.frombytes(bytes(stored or b""))
    return set(packed)
