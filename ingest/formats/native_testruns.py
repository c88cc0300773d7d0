"""Native test records (test_run.start / test_run.end / test_result, with their scores and metrics)
and score records. Pure.
"""

from __future__ import annotations

from ingest.formats import scores
from ingest.formats.native_reader import MAX_ID_CHARS, _common, _Reader
from ingest.formats.records import (
    ScoreRecord,
    TestResultRecord,
    TestRunRecord,
)

TEST_OUTCOMES = ("pass", "fail", "error", "skip", "xfail")


# What test runners call the same outcomes (pytest's report words, JUnit's elements).
TEST_OUTCOME_ALIASES = {
    "passed": "pass",
    "failed": "fail",
    "failure": "fail",
    "errored": "error",
    "skipped": "skip",
    "xfailed": "xfail",
}


MAX_TEST_ID_CHARS = 500


MAX_TIER_CHARS = 50


MAX_LINKED_SESSIONS = 100


def _test_run(reader: _Reader, action: str) -> TestRunRecord:
    started_at = reader.when("started_at", required=action == "start")
    ended_at = reader.when("ended_at", required=action == "end")
    return TestRunRecord(
        record_id=reader.ident("id") or "",
        run_id=reader.ident("run_id") or "",
        action=action,
        tier=_tier(reader),
        suite=reader.text("suite", limit=200),
        commit=reader.text("commit", limit=64),
        branch=reader.text("branch", limit=200),
        environment=reader.text("environment", limit=100),
        source=reader.text("source", limit=20),
        started_at=started_at,
        ended_at=ended_at,
        metadata=reader.mapping("metadata"),
    )


def _tier(reader: _Reader) -> str | None:
    tier = reader.text("tier", limit=MAX_TIER_CHARS)
    return None if tier is None else tier.strip().lower()


def _test_result(reader: _Reader) -> TestResultRecord:
    outcome = (reader.text("outcome", required=True, limit=20) or "").lower()
    outcome = TEST_OUTCOME_ALIASES.get(outcome, outcome)
    if outcome not in TEST_OUTCOMES:
        raise reader.fail("outcome", f"must be one of {', '.join(TEST_OUTCOMES)}, got {outcome!r}")
    duration = reader.number("duration_ms")
    if duration is not None and duration < 0:
        raise reader.fail("duration_ms", "must not be negative")
    return TestResultRecord(
        record_id=reader.ident("id") or "",
        run_id=reader.ident("run_id") or "",
        test_id=reader.text("test_id", required=True, limit=MAX_TEST_ID_CHARS) or "",
        outcome=outcome,
        name=reader.text("name", limit=MAX_TEST_ID_CHARS) or "",
        tier=_tier(reader) or "",
        duration_ms=duration,
        started_at=reader.when("started_at"),
        error_message=reader.text("error_message") or "",
        error_trace=reader.text("error_trace") or "",
        metrics=_test_metrics(reader),
        session_ids=_session_ids(reader),
        scores=_test_scores(reader),
    )


MAX_TEST_SCORES = 50


def _test_scores(reader: _Reader) -> tuple[ScoreRecord, ...]:
    """`scores`: {name: value} or a list of {name, value, data_type, label, comment}."""
    raw = reader.raw.get("scores")
    if raw is None:
        return ()
    if isinstance(raw, dict):
        raw = [{"name": name, "value": value} for name, value in raw.items()]
    if not isinstance(raw, list):
        raise reader.fail("scores", "must be an object of name: value or a list of scores")
    if len(raw) > MAX_TEST_SCORES:
        raise reader.fail("scores", f"holds {len(raw)} scores; the limit is {MAX_TEST_SCORES}")
    found = []
    for n, item in enumerate(raw):
        sub = _Reader(item, f"{reader.path}.scores[{n}]", reader.max_chars)
        value = _score_value(sub)
        found.append(
            ScoreRecord(
                record_id="",
                session_id="",
                name=sub.text("name", required=True, limit=scores.MAX_SCORE_NAME_CHARS) or "",
                data_type=value.data_type,
                value=value.value,
                label=value.label,
                comment=sub.text("comment", limit=scores.MAX_COMMENT_CHARS) or "",
                source="eval",
            )
        )
    return tuple(found)


def _test_metrics(reader: _Reader) -> dict[str, float]:
    raw = reader.mapping("metrics") or {}
    metrics: dict[str, float] = {}
    sub = _Reader(raw, f"{reader.path}.metrics", reader.max_chars)
    for name in raw:
        number = sub.number(name)
        if number is not None:
            metrics[str(name)[:200]] = number
    return metrics


def _session_ids(reader: _Reader) -> tuple[str, ...]:
    value = reader.raw.get("session_ids")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise reader.fail("session_ids", "must be a list of session ids (strings)")
    if len(value) > MAX_LINKED_SESSIONS:
        raise reader.fail(
            "session_ids", f"holds {len(value)} ids; the limit is {MAX_LINKED_SESSIONS}"
        )
    if any(len(v) > MAX_ID_CHARS for v in value):
        raise reader.fail("session_ids", f"each id is limited to {MAX_ID_CHARS} characters")
    return tuple(dict.fromkeys(value))


def _score(reader: _Reader) -> ScoreRecord:
    record_id, session_id = _common(reader)
    value = _score_value(reader)
    return ScoreRecord(
        record_id=record_id,
        session_id=session_id,
        span_id=reader.ident("span_id", required=False) or "",
        name=reader.text("name", required=True, limit=scores.MAX_SCORE_NAME_CHARS) or "",
        data_type=value.data_type,
        value=value.value,
        label=value.label,
        comment=reader.text("comment", limit=scores.MAX_COMMENT_CHARS) or "",
        source=reader.choice("source", scores.SOURCES, default="api"),
        author=reader.text("author", limit=scores.MAX_AUTHOR_CHARS) or "",
        at=reader.when("at"),
    )


def _score_value(reader: _Reader) -> scores.ScoreValue:
    data_type = reader.text("data_type", limit=20)
    if data_type is not None and data_type.lower() not in scores.DATA_TYPES:
        raise reader.fail(
            "data_type", f"must be one of {', '.join(scores.DATA_TYPES)}, got {data_type!r}"
        )
    label = reader.text("label", limit=scores.MAX_LABEL_CHARS)
    try:
        return scores.score_value(
            reader.raw.get("value"),
            data_type=data_type.lower() if data_type else None,
            label=label,
        )
    except scores.ScoreValueError as exc:
        raise reader.fail("value", str(exc).removeprefix("value ")) from None
