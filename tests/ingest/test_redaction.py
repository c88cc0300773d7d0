"""PII redaction detectors and their application to records: pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.formats.records import SessionRecord, SpanRecord, TranscriptRecord
from ingest.redaction import (
    BUILTIN_NAMES,
    COUNT_ATTRIBUTE,
    CustomPattern,
    PatternError,
    luhn_valid,
    parse_custom_patterns,
    redact_record,
    redactor_for,
)

ALL = redactor_for(BUILTIN_NAMES, ())
AT = datetime(2026, 1, 5, 12, tzinfo=UTC)


def redacted(text: str) -> str:
    return ALL.text(text)[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to alice.smith+x@example.co.uk now", "write to [REDACTED:email] now"),
        ("call +44 20 7946 0958 today", "call [REDACTED:phone] today"),
        ("call (555) 123-4567", "call [REDACTED:phone]"),
        ("call 555-123-4567.", "call [REDACTED:phone]."),
        ("pay with 4111 1111 1111 1111", "pay with [REDACTED:card]"),
        ("pay with 4111-1111-1111-1111", "pay with [REDACTED:card]"),
        ("to GB82 WEST 1234 5698 7654 32", "to [REDACTED:iban]"),
        ("to DE89370400440532013000", "to [REDACTED:iban]"),
        ("from 192.168.1.10", "from [REDACTED:ipv4]"),
        ("from 2001:db8::8a2e:370:7334", "from [REDACTED:ipv6]"),
        ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "key [REDACTED:openai_key]"),
        ("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", "key [REDACTED:anthropic_key]"),
        ("AKIAIOSFODNN7EXAMPLE", "[REDACTED:aws_key]"),
        ("ghp_" + "a" * 36, "[REDACTED:github_token]"),
        ("github_pat_" + "b" * 30, "[REDACTED:github_token]"),
        ("xoxb-123456789012-abcdefghij", "[REDACTED:slack_token]"),
        ("AIza" + "c" * 35, "[REDACTED:google_key]"),
        ("Authorization: Bearer abc.def-ghi_jkl123", "Authorization: Bearer [REDACTED:bearer]"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
            "[REDACTED:jwt]",
        ),
    ],
)
def test_each_built_in_detector_marks_what_it_finds(text: str, expected: str) -> None:
    assert redacted(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a Luhn-invalid number 4111 1111 1111 1112 is kept",
        "ISO dates 2024-01-15 and 2024-01-15 10:30:00 are not phone numbers",
        "nor is 15.01.2024 or 01/15/2024",
        "a unix time 1700000000 and an id 12345678 stay",
        "version 1.2.3, pi 3.14159, a time 12:30:45",
        "an IBAN-shaped GB00 WEST 1234 5698 7654 32 with a bad checksum",
        "the task-sk-runner and sk-short are not keys",
        "no e-mail in user@localhost or @handle",
        "a 20-digit id 12345678901234567890 is not a card",
    ],
)
def test_what_only_looks_like_personal_data_is_kept(text: str) -> None:
    assert redacted(text) == text


def test_the_count_says_how_many_values_were_marked() -> None:
    text, count = ALL.text("a@example.com, b@example.com and 10.0.0.1")
    assert count == 3
    assert text == "[REDACTED:email], [REDACTED:email] and [REDACTED:ipv4]"


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("4111111111111112")


def test_only_the_chosen_built_ins_run() -> None:
    only_email = redactor_for(("email",), ())
    assert only_email.text("a@example.com from 10.0.0.1") == ("[REDACTED:email] from 10.0.0.1", 1)


def test_a_custom_pattern_marks_with_its_own_name() -> None:
    patterns = parse_custom_patterns("employee: EMP-[0-9]{6}\n\norder: ORD[0-9]+")
    redactor = redactor_for((), tuple(patterns))
    assert redactor.text("EMP-123456 placed ORD42") == (
        "[REDACTED:employee] placed [REDACTED:order]",
        2,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no separator", "Line 1: write `name: pattern`."),
        ("Bad Name: x", "use 1 to 40 lower-case letters"),
        ("email: x+", "is a built-in detector's name"),
        ("backref: (a)\\1", "is not one RE2 accepts"),
        ("lookahead: a(?=b)", "is not one RE2 accepts"),
        ("empty: a*", "matches the empty string"),
        ("long: " + "a" * 501, "give 1 to 500 characters"),
        ("a: x\na: y", "Each custom pattern needs its own name."),
    ],
)
def test_a_bad_custom_pattern_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(PatternError, match=None) as caught:
        parse_custom_patterns(text)
    assert message in str(caught.value)


def test_a_pattern_that_backtracks_exponentially_elsewhere_is_linear_in_re2() -> None:
    """(a+)+$ against a long run of a's and a b takes exponential steps in a backtracking
    engine; RE2 answers without backtracking, so this returns at all."""
    redactor = redactor_for((), (CustomPattern("nested", "(a+)+$"),))
    text = "a" * 50_000 + "b"
    assert redactor.text(text) == (text, 0)


def test_a_span_is_redacted_in_every_agent_written_field_and_counts_them() -> None:
    span = SpanRecord(
        record_id="r1",
        session_id="s1",
        span_id="x",
        kind="llm",
        name="chat a@example.com",
        started_at=AT,
        prompt=[{"role": "user", "content": "I am bob@example.com"}],
        completion={"content": "Call +1 415 555 0100"},
        params={"card": "4111111111111111"},
        returns="ok from 10.1.2.3",
        attributes={"http.client_ip": "10.0.0.9", "tokens": 12},
        error_message="",
    )
    out, count = redact_record(span, ALL)
    assert isinstance(out, SpanRecord)
    assert count == 5
    assert out.prompt == [{"role": "user", "content": "I am [REDACTED:email]"}]
    assert out.completion == {"content": "Call [REDACTED:phone]"}
    assert out.params == {"card": "[REDACTED:card]"}
    assert out.returns == "ok from [REDACTED:ipv4]"
    assert out.attributes == {"http.client_ip": "[REDACTED:ipv4]", "tokens": 12, COUNT_ATTRIBUTE: 5}
    assert out.name == "chat a@example.com"  # names key rows; they are not agent text


def test_a_record_without_personal_data_is_returned_as_it_is() -> None:
    line = TranscriptRecord(record_id="t", session_id="s", role="user", text="hello there", at=AT)
    assert redact_record(line, ALL) == (line, 0)


def test_session_metadata_keeps_the_user_id_that_erasure_looks_up() -> None:
    session = SessionRecord(
        record_id="s",
        session_id="s",
        action="start",
        user_query="my mail is c@example.com",
        metadata={"user_id": "c@example.com", "note": "from c@example.com"},
    )
    out, count = redact_record(session, ALL)
    assert isinstance(out, SessionRecord)
    assert count == 2
    assert out.user_query == "my mail is [REDACTED:email]"
    assert out.metadata == {"user_id": "c@example.com", "note": "from [REDACTED:email]"}
