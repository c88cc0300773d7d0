"""JUnit XML (what pytest, Jest, Go's gotestsum, Maven Surefire and most CI tools write) parsed into
one TestRunRecord and its TestResultRecords. Pure.

An upload is all or nothing: anything that is not a readable JUnit report raises BodyError naming
where it went wrong, so a half-understood file never stores half its results. The XML is read with
defusedxml: no DTDs, no entity expansion (a "billion laughs" body is refused, not expanded).
"""

from __future__ import annotations

import hashlib
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import defusedxml.ElementTree as safe_xml
from defusedxml import DefusedXmlException

from ingest.formats.native_reader import parse_timestamp
from ingest.formats.native_testruns import MAX_LINKED_SESSIONS, MAX_TEST_ID_CHARS
from ingest.formats.records import (
    BodyError,
    ParseResult,
    Record,
    TestResultRecord,
    TestRunRecord,
)

# Properties (pytest's record_property, <properties> of a testcase) that mean something to us.
SESSION_PROPERTIES = ("session_id", "observatory.session_id", "session_ids")
TIER_PROPERTIES = ("tier", "observatory.tier")
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class JUnitRun:
    """What the uploader says about the run (query parameters); the file says the rest."""

    tier: str = ""
    suite: str = ""
    commit: str = ""
    branch: str = ""
    environment: str = ""
    run_id: str = ""


@dataclass
class _Suite:
    timestamps: list[datetime]
    seconds: float
    name: str


def parse_junit(body: bytes, run: JUnitRun, *, now: datetime, max_string_chars: int) -> ParseResult:
    """One run record then a result per <testcase>, in file order.

    Record ids hash the body and the parameters, so a retried upload is a duplicate and stores
    nothing. Raises BodyError (400) for XML that is not well formed, uses a DTD or entities, or is
    not a JUnit report; its field names the element, e.g. `testsuite[0]/testcase[3]@name`.
    """
    root = _parse_xml(body)
    digest = hashlib.sha256(body + repr(run).encode()).hexdigest()[:32]
    suite = _Suite(timestamps=[], seconds=0.0, name="")
    cases = list(_testcases(root, suite))
    if not cases:
        raise BodyError("The report holds no <testcase> elements", field=root.tag)
    run_id = run.run_id or f"junit-{digest}"
    results: list[tuple[int, Record]] = []
    for index, (path, case) in enumerate(cases, start=1):
        record_id = f"junit-{digest}-{index}"
        results.append((index, _result(case, path, record_id, run_id, max_string_chars, run.tier)))
    started_at = min(suite.timestamps) if suite.timestamps else now
    start = TestRunRecord(
        record_id=f"junit-{digest}-run",
        run_id=run_id,
        action="start",
        tier=run.tier.strip().lower(),
        suite=run.suite or suite.name,
        commit=run.commit,
        branch=run.branch,
        environment=run.environment,
        source="junit",
        started_at=started_at,
        ended_at=started_at + timedelta(seconds=suite.seconds),
    )
    return ParseResult(records=[(0, start), *results], errors=[])


def _parse_xml(body: bytes) -> ET.Element:
    try:
        root: ET.Element = safe_xml.fromstring(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BodyError(f"XML with a DTD or entities is refused: {exc}") from exc
    except ET.ParseError as exc:
        line, column = exc.position
        raise BodyError(
            f"Body is not well-formed XML (line {line}, column {column}): {_reason(exc)}"
        ) from exc
    if _local(root.tag) not in ("testsuites", "testsuite"):
        raise BodyError(
            f"Not a JUnit report: the root element is <{_local(root.tag)}>, expected <testsuites> "
            "or <testsuite>",
            field=_local(root.tag),
        )
    return root


def _reason(exc: ET.ParseError) -> str:
    return str(exc).split(":")[0]


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _testcases(element: ET.Element, suite: _Suite, path: str = "") -> Any:
    """(path, <testcase>) pairs in document order, through nested suites; sums suite times."""
    here = path or _local(element.tag)
    if _local(element.tag) == "testsuite":
        _note_suite(element, suite, here)
    counts: dict[str, int] = {}
    for child in element:
        tag = _local(child.tag)
        if tag not in ("testsuite", "testcase"):
            continue
        number = counts[tag] = counts.get(tag, -1) + 1
        child_path = f"{here}/{tag}[{number}]"
        if tag == "testcase":
            yield child_path, child
        else:
            yield from _testcases(child, suite, child_path)


def _note_suite(element: ET.Element, suite: _Suite, path: str) -> None:
    stamp = element.get("timestamp")
    if stamp:
        parsed = parse_timestamp(stamp)
        if parsed is None:
            raise BodyError(
                f"{path}@timestamp: not a timestamp: {stamp!r}", field=f"{path}@timestamp"
            )
        suite.timestamps.append(parsed)
    suite.seconds += _seconds(element.get("time")) or 0.0
    suite.name = suite.name or (element.get("name") or "")[:200]


def _seconds(value: str | None) -> float | None:
    """A time attribute; lax about thousands separators (some tools write "1,234.5")."""
    if not value:
        return None
    try:
        seconds = float(value.replace(",", ""))
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _result(
    case: ET.Element, path: str, record_id: str, run_id: str, max_chars: int, tier: str
) -> TestResultRecord:
    name = case.get("name") or ""
    if not name:
        raise BodyError(f"{path}@name: a <testcase> needs a name", field=f"{path}@name")
    classname = case.get("classname") or ""
    test_id = f"{classname}::{name}" if classname else name
    if len(test_id) > MAX_TEST_ID_CHARS:
        raise BodyError(
            f"{path}@name: the test id is {len(test_id)} characters; the limit is "
            f"{MAX_TEST_ID_CHARS}",
            field=f"{path}@name",
        )
    outcome, message, trace = _outcome(case)
    properties = _properties(case)
    seconds = _seconds(case.get("time"))
    return TestResultRecord(
        record_id=record_id,
        run_id=run_id,
        test_id=test_id,
        outcome=outcome,
        name=name,
        tier=_first(properties, TIER_PROPERTIES) or tier.strip().lower(),
        duration_ms=None if seconds is None else seconds * 1000,
        error_message=message[:MAX_MESSAGE_CHARS],
        error_trace=trace[:max_chars],
        metrics=_metrics(properties),
        session_ids=_linked_sessions(properties, path),
    )


def _outcome(case: ET.Element) -> tuple[str, str, str]:
    """(outcome, message, trace); pytest writes an xfail as <skipped type="pytest.xfail">."""
    for child in case:
        tag = _local(child.tag)
        if tag in ("failure", "error"):
            message = child.get("message") or child.get("type") or ""
            return ("fail" if tag == "failure" else "error"), message, (child.text or "").strip()
        if tag == "skipped":
            kind = "xfail" if child.get("type") == "pytest.xfail" else "skip"
            return kind, child.get("message") or (child.text or "").strip(), ""
    return "pass", "", ""


def _properties(case: ET.Element) -> list[tuple[str, str]]:
    return [
        (prop.get("name") or "", prop.get("value") or (prop.text or ""))
        for holder in case
        if _local(holder.tag) == "properties"
        for prop in holder
        if _local(prop.tag) == "property"
    ]


def _first(properties: list[tuple[str, str]], names: tuple[str, ...]) -> str:
    return next((value.strip().lower() for name, value in properties if name in names), "")


def _linked_sessions(properties: list[tuple[str, str]], path: str) -> tuple[str, ...]:
    ids = [
        part.strip()
        for name, value in properties
        if name in SESSION_PROPERTIES
        for part in value.split(",")
        if part.strip()
    ]
    if len(ids) > MAX_LINKED_SESSIONS or any(len(i) > 128 for i in ids):
        raise BodyError(
            f"{path}: at most {MAX_LINKED_SESSIONS} session ids of up to 128 characters",
            field=f"{path}/properties",
        )
    return tuple(dict.fromkeys(ids))


def _metrics(properties: list[tuple[str, str]]) -> dict[str, float]:
    """Numeric properties other than ours (tokens, cost…) become the result's metrics."""
    metrics: dict[str, float] = {}
    for name, value in properties:
        if not name or name in SESSION_PROPERTIES or name in TIER_PROPERTIES:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            metrics[name[:200]] = number
    return metrics
