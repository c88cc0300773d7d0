"""A few hundred seeded mutations of the committed OTLP captures (tests/fuzz_corpus.py) posted
to /v1/*: never a 500, nothing stored from a refused body, every span of an accepted one either
stored or counted as rejected. bench/fuzz.sh runs thousands against a live server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.formats.otlp import parse_otlp_traces
from ingest.formats.records import BodyError, SpanRecord
from ingest.models import MetricSample, Span, TranscriptLine
from tests.builders import make_project
from tests.fuzz_corpus import FuzzCase, fuzz_cases

CASES = 300


def _rejected_spans(case: FuzzCase, response: Any) -> int:
    if case.content_type == "application/json":
        partial = json.loads(response.content).get("partialSuccess", {})
        return int(partial.get("rejectedSpans", 0))
    answer = ExportTraceServiceResponse.FromString(response.content)
    return int(answer.partial_success.rejected_spans)


def parsed_span_ids(case: FuzzCase) -> set[str]:
    """The span ids the parser makes records of (a tool-call request span is folded into its
    LLM span, so it is not one); empty for a body it refuses."""
    if case.signal != "traces":
        return set()
    try:
        parsed = parse_otlp_traces(case.body, case.content_type, max_string_chars=1_000_000)
    except BodyError:
        return set()
    return {r.span_id for _, r in parsed.records if isinstance(r, SpanRecord)}


def _telemetry_rows(project: Any) -> int:
    return sum(
        model.objects.filter(project=project).count()
        for model in (Span, TranscriptLine, MetricSample)
    )


@pytest.mark.django_db
def test_fuzzed_otlp_bodies_never_fail_and_lose_nothing() -> None:
    client = Client(raise_request_exception=False)
    failures: list[str] = []
    for case in fuzz_cases(CASES, seed=14):
        project, key = make_project(name=f"fuzz {len(failures)} {hash(case.label)}")
        response = client.post(
            case.path, case.body, content_type=case.content_type, HTTP_AUTHORIZATION=f"Bearer {key}"
        )
        if response.status_code >= 500:
            # The test client sets exc_info on every response; django-stubs does not declare it.
            exc_info = response.exc_info  # type: ignore[attr-defined]
            exc = exc_info[1] if exc_info else None
            failures.append(f"{case.label}: {response.status_code} {exc!r:.300}")
        elif response.status_code >= 400:
            if _telemetry_rows(project):
                failures.append(f"{case.label}: refused ({response.status_code}) but stored rows")
        elif sent := parsed_span_ids(case):
            stored = set(Span.objects.filter(project=project).values_list("span_id", flat=True))
            if len(sent - stored) > _rejected_spans(case, response):
                failures.append(f"{case.label}: spans {sorted(sent - stored)} lost")
    assert not failures, "\n".join(failures)
