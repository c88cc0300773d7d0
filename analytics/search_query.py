"""A search as typed: the query parsed into terms (words, "phrases", or, -word), its FTS5 form,
and the snippets read back, escaped with the matches in <mark>. Pure.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MAX_QUERY_CHARS = 300


MARK_START, MARK_END = "\ue000", "\ue001"


_MARKED = re.compile(f"{MARK_START}(.*?){MARK_END}", re.S)


_SPACES = re.compile(r"\s+")


class SearchError(ValueError):
    """A query that cannot be run; the message names what is wrong (shown as a 400)."""


@dataclass(frozen=True, slots=True)
class Query:
    text: str  # as typed (PostgreSQL's websearch_to_tsquery reads it)
    fts5: str  # the same query in SQLite FTS5 syntax, every term quoted


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
