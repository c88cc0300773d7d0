"""Tasks outside any workflow span form their trace's implicit run, which ends with the root."""

from __future__ import annotations

import json
from typing import Any

from ingest.formats.otlp import parse_otlp_traces
from ingest.formats.records import WorkflowRecord

TRACE = "0af7651916cd43dd8448eb211c80319c"


def span(span_id: str, parent: str, name: str, kind: str, start: int, end: int) -> dict[str, Any]:
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "startTimeUnixNano": str(start),
        "endTimeUnixNano": str(end),
        "attributes": [
            {"key": "agentops.span.kind", "value": {"stringValue": kind}},
            {"key": "operation.name", "value": {"stringValue": name.split(".")[0]}},
        ],
    }


def test_the_implicit_run_of_a_finished_trace_is_finished() -> None:
    body = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            span("b7ad6b7169203331", "", "weather-run.session", "session", 1, 9),
                            span("00f067aa0ba902b7", "b7ad6b7169203331", "plan.task", "task", 2, 5),
                        ]
                    }
                ]
            }
        ]
    }
    parsed = parse_otlp_traces(
        json.dumps(body).encode(), "application/json", max_string_chars=10_000
    )
    runs = [r for _, r in parsed.records if isinstance(r, WorkflowRecord)]
    assert {(r.workflow_id, r.action) for r in runs} == {(TRACE, "start"), (TRACE, "end")}
    end = next(r for r in runs if r.action == "end")
    assert end.status == "success"
