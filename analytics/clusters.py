"""Error clusters: error messages fingerprinted once numbers, ids, hex, uuids, paths, URLs,
emails and quoted values are masked, then counted per cluster and day. Pure.
"""

from __future__ import annotations

import hashlib
import re

import pandas as pd

ERROR_SPAN_COLUMNS = [
    "started_at",
    "session_id",
    "agent_external_id",
    "kind",
    "name",
    "error_type",
    "error_message",
]
DAY_COLUMNS = [
    "fingerprint",
    "day",
    "error_type",
    "pattern",
    "example_message",
    "example_session_id",
    "count",
    "first_seen_at",
    "last_seen_at",
    "agents",
]
PATTERN_CHARS = 1000

# Order matters: whole tokens that contain digits (uuids, hex, paths, URLs) are masked before
# the bare numbers inside them would be.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`"), "<str>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<email>"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.@-]+){2,}[\\/]?"), "<path>"),
    (
        re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.I),
        "<hex>",
    ),
    (re.compile(r"[-+]?\b\d+(?:[.,:]\d+)*(?!\d)"), "<n>"),
    (re.compile(r"\s+"), " "),
)


# Masking reads at most this much of a message: the pattern keeps PATTERN_CHARS anyway, and the
# refresh must not spend seconds on one agent-written error text.
MESSAGE_CHARS = 4 * PATTERN_CHARS
# An identifier is a run of letters, digits, _ and - with a letter (or _) somewhere before a
# digit: usr_8KqPz2, gpt-4o, run-42. Found as plain runs and judged by _id_or_same, because the
# one-regex form (nested stars between word boundaries) backtracked cubically on runs like
# "1a1a…1aé" (2,000 characters: 6 s).
_RUN = re.compile(r"[A-Za-z0-9_-]+")
_LETTER = re.compile(r"[A-Za-z_]")
_DIGIT = re.compile(r"\d")
_ID_MASK_AT = next(i for i, (p, _) in enumerate(_MASKS) if p.pattern.startswith("[-+]?"))


def _id_or_same(match: re.Match[str]) -> str:
    run = match.group(0)
    core = run.strip("-")
    start = match.start() + run.index(core[0]) if core else match.start()
    end = start + len(core)
    text = match.string
    # Glued to another word character (é, ß…): not a token on its own, as \b would say.
    if (
        not core
        or (start > 0 and text[start - 1].isalnum())
        or (end < len(text) and text[end].isalnum())
    ):
        return run
    letter = _LETTER.search(core)
    if letter is None or _DIGIT.search(core, letter.end()) is None:
        return run
    lead = run[: len(run) - len(run.lstrip("-"))]
    trail = run[len(run.rstrip("-")) :]
    return f"{lead}<id>{trail}"


def normalise_message(message: str) -> str:
    """The message with its variable parts masked: `Timeout after 10.5s on /srv/a.py for 'x'` ->
    `Timeout after <n>s on <path> for <str>`. Linear in the message's length, of which it reads
    the first MESSAGE_CHARS."""
    text = message[:MESSAGE_CHARS]
    for index, (pattern, mask) in enumerate(_MASKS):
        if index == _ID_MASK_AT:
            text = _RUN.sub(_id_or_same, text)
        text = pattern.sub(mask, text)
    return text.strip()[:PATTERN_CHARS]


def fingerprint(error_type: str, message: str) -> tuple[str, str]:
    """(fingerprint, pattern): a stable 40-hex id of the error type and normalised message."""
    pattern = normalise_message(message or "")
    digest = hashlib.sha1(f"{error_type}\0{pattern}".encode(), usedforsecurity=False)
    return digest.hexdigest(), pattern


def error_cluster_days(errors: pd.DataFrame) -> pd.DataFrame:
    """Error spans grouped by fingerprint and UTC day.

    errors: ERROR_SPAN_COLUMNS, one row per error span. A span with an empty message is
    clustered under its error type (or its span name). Returns DAY_COLUMNS, with the first error
    of the day as the example and `agents` the sorted distinct agent ids; sorted by fingerprint
    and day. Deterministic.
    """
    if len(errors) == 0:
        return pd.DataFrame(columns=DAY_COLUMNS)
    frame = errors.assign(
        started_at=pd.to_datetime(errors["started_at"], utc=True),
        error_type=errors["error_type"].fillna("").astype(str),
        error_message=errors["error_message"].fillna("").astype(str),
        agent_external_id=errors["agent_external_id"].fillna("").astype(str),
    )
    messages = frame["error_message"].where(
        frame["error_message"] != "",
        frame["error_type"].where(frame["error_type"] != "", frame["name"]),
    )
    pairs = [fingerprint(t, m) for t, m in zip(frame["error_type"], messages, strict=True)]
    frame["fingerprint"] = [p[0] for p in pairs]
    frame["pattern"] = [p[1] for p in pairs]
    frame["message"] = messages
    frame["day"] = frame["started_at"].dt.floor("1D").dt.date
    frame = frame.sort_values(["fingerprint", "day", "started_at"], kind="stable")
    grouped = frame.groupby(["fingerprint", "day"], sort=True)
    days = grouped.agg(
        error_type=("error_type", "first"),
        pattern=("pattern", "first"),
        example_message=("message", "first"),
        example_session_id=("session_id", "first"),
        count=("fingerprint", "size"),
        first_seen_at=("started_at", "min"),
        last_seen_at=("started_at", "max"),
        agents=("agent_external_id", lambda a: sorted({x for x in a if x})),
    ).reset_index()
    return days[DAY_COLUMNS]


def cluster_totals(days: pd.DataFrame) -> pd.DataFrame:
    """Per fingerprint: count, first_seen_at, last_seen_at and agents over all its days.

    days: columns fingerprint, count, first_seen_at, last_seen_at, agents (lists)."""
    columns = ["fingerprint", "count", "first_seen_at", "last_seen_at", "agents"]
    if len(days) == 0:
        return pd.DataFrame(columns=columns)
    grouped = days.groupby("fingerprint", sort=True)
    totals = grouped.agg(
        count=("count", "sum"),
        first_seen_at=("first_seen_at", "min"),
        last_seen_at=("last_seen_at", "max"),
        agents=("agents", lambda lists: sorted({a for agents in lists for a in (agents or [])})),
    ).reset_index()
    return totals[columns]
