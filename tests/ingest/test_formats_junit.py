"""The JUnit XML parser, without a database: outcomes, properties, ids, and refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ingest.formats.junit import JUnitRun, parse_junit
from ingest.formats.records import BodyError, TestResultRecord, TestRunRecord

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)

REPORT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites>
  <testsuite name="agents" timestamp="2026-11-20T09:00:00+01:00" time="2.5">
    <testcase classname="tools.search" name="test_finds" time="0.5">
      <properties>
        <property name="session_id" value="s-1,s-2"/>
        <property name="tokens" value="812"/>
        <property name="note" value="not a number"/>
      </properties>
    </testcase>
    <testcase classname="tools.calc" name="test_divides" time="1,000.5">
      <failure message="assert 0.25 == 0.5">Traceback: calc.py:3</failure>
    </testcase>
    <testcase name="test_boom"><error type="ConnectionError"/></testcase>
    <testcase name="test_later"><skipped message="needs network"/></testcase>
    <testcase name="test_emoji"><skipped type="pytest.xfail" message="known bug"/></testcase>
  </testsuite>
</testsuites>
"""


def parse(body: bytes = REPORT, **run: str) -> list[Any]:
    # Any: the tests unpack a run and its results by position; each is the record it names.
    parsed = parse_junit(body, JUnitRun(**run), now=NOW, max_string_chars=10_000)
    assert parsed.errors == []
    return [record for _, record in parsed.records]


def test_it_reads_every_outcome_and_the_run_times() -> None:
    run, *results = parse(tier="Unit", commit="abc123", branch="main")

    assert isinstance(run, TestRunRecord)
    assert (run.tier, run.commit, run.branch, run.suite, run.source) == (
        "unit",
        "abc123",
        "main",
        "agents",
        "junit",
    )
    assert run.started_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert run.ended_at is not None
    assert (run.ended_at - run.started_at).total_seconds() == 2.5
    assert [(r.test_id, r.outcome) for r in results] == [
        ("tools.search::test_finds", "pass"),
        ("tools.calc::test_divides", "fail"),
        ("test_boom", "error"),
        ("test_later", "skip"),
        ("test_emoji", "xfail"),
    ]
    assert all(isinstance(r, TestResultRecord) and r.tier == "unit" for r in results)


def test_failure_message_trace_duration_sessions_and_metrics_are_kept() -> None:
    _, passed, failed, errored, skipped, _ = parse()

    assert passed.session_ids == ("s-1", "s-2")
    assert passed.metrics == {"tokens": 812.0}
    assert passed.duration_ms == 500.0
    assert failed.error_message == "assert 0.25 == 0.5"
    assert failed.error_trace == "Traceback: calc.py:3"
    assert failed.duration_ms == 1_000_500.0
    assert errored.error_message == "ConnectionError"
    assert skipped.error_message == "needs network"


def test_the_same_upload_gets_the_same_ids_and_other_parameters_new_ones() -> None:
    first = parse(branch="main")
    again = parse(branch="main")
    other = parse(branch="feature")

    assert [r.record_id for r in first] == [r.record_id for r in again]
    assert first[0].run_id == again[0].run_id
    assert first[0].run_id != other[0].run_id


def test_a_run_id_parameter_names_the_run() -> None:
    run, *results = parse(run_id="ci-4711")

    assert run.run_id == "ci-4711"
    assert {r.run_id for r in results} == {"ci-4711"}


def test_a_single_testsuite_root_without_timestamp_starts_now() -> None:
    body = b'<testsuite name="go" time="1"><testcase name="TestX" classname="pkg"/></testsuite>'

    run, result = parse(body)

    assert run.started_at == NOW
    assert result.test_id == "pkg::TestX"


def test_nested_suites_are_walked_in_order() -> None:
    body = (
        b"<testsuites><testsuite name='outer'><testsuite name='inner'>"
        b"<testcase name='a'/></testsuite><testcase name='b'/></testsuite></testsuites>"
    )

    _, a, b = parse(body)

    assert (a.test_id, b.test_id) == ("a", "b")


@pytest.mark.parametrize(
    ("body", "message", "field"),
    [
        (b"<testsuites><testsuite>", "not well-formed XML (line 1, column 23)", ""),
        (b"not xml at all", "not well-formed XML", ""),
        (b"<html><body/></html>", "the root element is <html>", "html"),
        (b"<testsuites><testsuite/></testsuites>", "no <testcase> elements", "testsuites"),
        (
            b"<testsuites><testsuite><testcase name='ok'/><testcase/></testsuite></testsuites>",
            "needs a name",
            "testsuites/testsuite[0]/testcase[1]@name",
        ),
        (
            b"<testsuite timestamp='yesterday'><testcase name='a'/></testsuite>",
            "not a timestamp",
            "testsuite@timestamp",
        ),
    ],
)
def test_a_report_that_is_not_junit_is_refused_whole(body: bytes, message: str, field: str) -> None:
    with pytest.raises(BodyError) as refused:
        parse_junit(body, JUnitRun(), now=NOW, max_string_chars=10_000)

    assert message in refused.value.message
    assert refused.value.field == field
    assert refused.value.status == 400


def test_entity_expansion_is_refused_not_expanded() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
        b"<testsuite><testcase name='&lol2;'/></testsuite>"
    )

    with pytest.raises(BodyError, match="DTD or entities is refused"):
        parse_junit(bomb, JUnitRun(), now=NOW, max_string_chars=10_000)
