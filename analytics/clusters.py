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
    (
        re.compile(r"\b(?=[A-Za-z_-]*\d)[A-Za-z0-9_-]*[A-Za-z_][A-Za-z0-9_-]*\d[A-Za-z0-9_-]*\b"),
        "<id>",
    ),
    (re.compile(r"[-+]?\b\d+(?:[.,:]\d+)*(?!\d)"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise_message(message: str) -> str:
    """The message with its variable parts masked: `Timeout after 10.5s on /srv/a.py for 'x'` ->
    `Timeout after <n>s on <path> for <str>`."""
    text = message
    for pattern, mask in _MASKS:
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
