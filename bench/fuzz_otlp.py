"""Post seeded fuzz cases (tests/fuzz_corpus.py) to a live server's /v1/* and check the answers
against the database (issue 14): no 500, nothing stored from a refused body, no span of an
accepted body lost. One fresh project per case, so a case's rows are its own. Run by
bench/fuzz.sh, which starts the server and exports DATABASE_URL."""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceResponse,
)

from ingest.formats.otlp import parse_otlp_traces  # noqa: E402
from ingest.formats.records import BodyError, SpanRecord  # noqa: E402
from ingest.models import ApiKey, MetricSample, Project, Span, TranscriptLine  # noqa: E402
from tests.fuzz_corpus import FuzzCase, fuzz_cases  # noqa: E402


def post(url: str, case: FuzzCase, key: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url + case.path,
        data=case.body,
        headers={"Content-Type": case.content_type, "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def rejected_spans(case: FuzzCase, body: bytes) -> int:
    if case.content_type == "application/json":
        return int(json.loads(body).get("partialSuccess", {}).get("rejectedSpans", 0))
    return int(ExportTraceServiceResponse.FromString(body).partial_success.rejected_spans)


def parsed_span_ids(case: FuzzCase) -> set[str]:
    if case.signal != "traces":
        return set()
    try:
        parsed = parse_otlp_traces(case.body, case.content_type, max_string_chars=1_000_000)
    except BodyError:
        return set()
    return {r.span_id for _, r in parsed.records if isinstance(r, SpanRecord)}


def check(url: str, n: int, case: FuzzCase) -> tuple[int, str]:
    project = Project.objects.create(name=f"fuzz {n}", slug=f"fuzz-{n}")
    _, key = ApiKey.generate(project)
    status, body = post(url, case, key)
    if status >= 500:
        return status, f"{case.label}: HTTP {status} {body[:200]!r}"
    if status >= 400:
        stored = sum(
            m.objects.filter(project=project).count() for m in (Span, TranscriptLine, MetricSample)
        )
        return (
            status,
            f"{case.label}: refused ({status}) but {stored} rows stored" if stored else "",
        )
    sent = parsed_span_ids(case)
    if sent:
        kept = set(Span.objects.filter(project=project).values_list("span_id", flat=True))
        if len(sent - kept) > rejected_spans(case, body):
            return status, f"{case.label}: spans {sorted(sent - kept)[:5]} lost"
    return status, ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=14)
    args = parser.parse_args()
    statuses: dict[int, int] = {}
    problems: list[str] = []
    for n, case in enumerate(fuzz_cases(args.cases, seed=args.seed)):
        status, problem = check(args.url.rstrip("/"), n, case)
        statuses[status] = statuses.get(status, 0) + 1
        if problem:
            problems.append(problem)
    print(
        f"otlp fuzz: {args.cases} cases (seed {args.seed}),"
        f" answers {dict(sorted(statuses.items()))}"
    )
    print(f"otlp fuzz: {statuses.get(500, 0)} answers of 500, {len(problems)} problems")
    for problem in problems[:50]:
        print("  " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
