"""analytics.clusters: error fingerprints and per-day cluster counts. Pure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.clusters import (
    ERROR_SPAN_COLUMNS,
    PATTERN_CHARS,
    cluster_totals,
    error_cluster_days,
    fingerprint,
    normalise_message,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        ("SearchTool timed out after 10.5s", "SearchTool timed out after <n>s"),
        (
            "HTTPSConnectionPool(host='paste.example', port=443): Max retries exceeded",
            "HTTPSConnectionPool(host=<str>, port=<n>): Max retries exceeded",
        ),
        ("[Errno 13] Permission denied: '/etc/shadow'", "[Errno <n>] Permission denied: <str>"),
        ("No such file /srv/app/data/run-42.json", "No such file <path>"),
        (
            "session 3f2a1c9e-2b7d-4c1e-9a8b-0c1d2e3f4a5b not found",
            "session <uuid> not found",
        ),
        ("object at 0x7f3a2b1c has no attribute", "object at <hex> has no attribute"),
        ("trace 4bf92f3577b34da6a3ce929d0e0e4736 expired", "trace <hex> expired"),
        ("user usr_8KqPz2 is blocked", "user <id> is blocked"),
        ("fetch https://api.example.com/v1/items?id=7 failed", "fetch <url> failed"),
        ("mail to j.doe@example.com bounced", "mail to <email> bounced"),
        (
            "Error code: 429 - Rate limit reached for gpt-4o in organization org-arena",
            "Error code: <n> - Rate limit reached for <id> in organization org-arena",
        ),
    ],
)
def test_variable_parts_of_a_message_are_masked(message: str, pattern: str) -> None:
    assert normalise_message(message) == pattern


def test_messages_that_differ_only_in_numbers_share_a_fingerprint() -> None:
    first, _ = fingerprint("TimeoutError", "timed out after 10s (attempt 1)")
    second, _ = fingerprint("TimeoutError", "timed out after 30s (attempt 3)")
    other_type, _ = fingerprint("ValueError", "timed out after 10s (attempt 1)")

    assert first == second
    assert first != other_type


def errors(*rows: tuple[float, str, str, str]) -> pd.DataFrame:
    """(hours after T0, agent, error type, message) -> error span rows."""
    return pd.DataFrame(
        [
            (T0 + timedelta(hours=h), i + 1, agent, "tool", "search", error_type, message)
            for i, (h, agent, error_type, message) in enumerate(rows)
        ],
        columns=ERROR_SPAN_COLUMNS,
    )


def test_errors_are_counted_per_cluster_and_day_with_an_example() -> None:
    days = error_cluster_days(
        errors(
            (0, "alice", "TimeoutError", "timed out after 10s"),
            (1, "bob", "TimeoutError", "timed out after 12s"),
            (25, "alice", "TimeoutError", "timed out after 9s"),
            (2, "alice", "ValueError", "bad 'x'"),
        )
    )

    timeouts = days[days["error_type"] == "TimeoutError"]
    assert list(timeouts["count"]) == [2, 1]
    first_day = timeouts.iloc[0]
    assert first_day["example_message"] == "timed out after 10s"
    assert first_day["example_session_id"] == 1
    assert first_day["agents"] == ["alice", "bob"]
    assert first_day["pattern"] == "timed out after <n>s"


def test_an_error_without_a_message_is_clustered_by_its_type() -> None:
    days = error_cluster_days(errors((0, "a", "KeyError", ""), (1, "a", "KeyError", "")))

    assert list(days["count"]) == [2]
    assert days.iloc[0]["pattern"] == "KeyError"


def test_cluster_totals_add_up_the_days() -> None:
    days = error_cluster_days(
        errors(
            (0, "alice", "TimeoutError", "timed out after 10s"),
            (30, "bob", "TimeoutError", "timed out after 12s"),
        )
    )

    totals = cluster_totals(days)

    assert len(totals) == 1
    row = totals.iloc[0]
    assert row["count"] == 2
    assert row["agents"] == ["alice", "bob"]
    assert row["last_seen_at"] - row["first_seen_at"] == timedelta(hours=30)


def test_no_errors_give_no_clusters() -> None:
    assert len(error_cluster_days(errors())) == 0
    assert len(cluster_totals(error_cluster_days(errors()))) == 0


@pytest.mark.parametrize(
    ("message", "pattern"),
    [
        # Runs that once made the id mask backtrack cubically (2,000 characters: 6 s).
        ("1a" * 1000 + "é", "<n>" + "a1" * 999 + "aé"),
        ("x" + "1a" * 1000 + "!", "<id>!"),
        ("-run-42- failed", "-<id>- failed"),
        ("café7 failed", "café7 failed"),
    ],
)
def test_identifier_masking_handles_long_runs_and_glued_letters(message: str, pattern: str) -> None:
    assert normalise_message(message) == pattern[:PATTERN_CHARS]


def test_only_the_head_of_a_huge_message_is_read() -> None:
    huge = "Timeout after 10s " + "y" * 5_000_000 + " at /srv/app/main.py"

    assert normalise_message(huge) == ("Timeout after <n>s " + "y" * 5_000_000)[:PATTERN_CHARS]
