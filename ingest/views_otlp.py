"""OTLP/HTTP endpoints (traces, metrics, logs), which the agentops 0.4 SDK also posts to.

Status codes follow the OTLP/HTTP spec, because exporters act on them: 400 undecodable, 401 bad
credentials, 413 too large, 415 unsupported content type, 503 with Retry-After when we cannot
write right now (exporters retry 503 but drop on 429), 200 with partial_success otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from ingest.auth import project_for_otlp_request
from ingest.formats.records import BodyError, ParseResult, RecordError
from ingest.landing import defer_request, is_deferred
from ingest.models import Project
from ingest.otlp_parsing import decoded_traces, mapped_traces, parser_for, request_key
from ingest.signals import announce_sessions_stored
from ingest.store import OUTAGE_ERRORS, save_records_or_reject
from ingest.views import error, keep_refused_body, read_body, unavailable, with_project

logger = logging.getLogger(__name__)


# signal name -> (protobuf response class, partial_success field, JSON field)
SIGNALS: dict[str, tuple[Any, str, str]] = {
    "traces": (ExportTraceServiceResponse, "rejected_spans", "rejectedSpans"),
    "metrics": (ExportMetricsServiceResponse, "rejected_data_points", "rejectedDataPoints"),
    "logs": (ExportLogsServiceResponse, "rejected_log_records", "rejectedLogRecords"),
}


def otlp_endpoint(signal: str) -> Callable[[HttpRequest], HttpResponse]:
    @csrf_exempt
    @require_POST
    @with_project(project_for_otlp_request)
    def view(request: HttpRequest, project: Project) -> HttpResponse:
        content_type = request.headers.get("Content-Type", "")
        try:
            body = read_body(request)
            parsed, refusals = _parse_unless_small(project, signal, body, content_type)
        except BodyError as exc:
            keep_refused_body(project, request, exc, source=f"otlp-{signal}")
            return error(exc.message, exc.status, field=exc.field)
        key = request_key(signal, body)
        try:
            if parsed is None:
                defer_request(
                    project, signal=signal, content_type=content_type, body=body, request_key=key
                )
            else:
                refusals = _store_now(project, signal, key, parsed)
        except OUTAGE_ERRORS as exc:
            return unavailable(f"otlp {signal}", exc)
        return export_response(signal, content_type, refusals)

    view.__name__ = f"otlp_{signal}"
    return view


def _parse_unless_small(
    project: Project, signal: str, body: bytes, content_type: str
) -> tuple[ParseResult | None, list[RecordError]]:
    """(parsed request, refusals), or (None, refusals) for a request small enough to defer: it
    is committed as pending and parsed again when it lands (ingest/landing.py). A protobuf trace
    request is decoded once either way, and a small one never mapped (mapping refuses nothing):
    its size is its spans, other requests' their records."""
    decoded = decoded_traces(body, content_type) if signal == "traces" else None
    if decoded is not None:
        if is_deferred(project, len(decoded.items)):
            return None, decoded.errors
        parsed = mapped_traces(project, decoded)
    else:
        parsed = parser_for(project, signal)(body, content_type)
        if is_deferred(project, len(parsed.records)):
            return None, parsed.errors
    return parsed, parsed.errors


def _store_now(project: Project, signal: str, key: str, parsed: ParseResult) -> list[RecordError]:
    saved, errors = save_records_or_reject(
        project, parsed.records, parsed.errors, source=f"otlp-{signal}", request_key=key
    )
    announce_sessions_stored(saved.session_pks, soon=True)
    return errors


def export_response(signal: str, content_type: str, errors: list[RecordError]) -> HttpResponse:
    """200 with partial_success naming how many items were refused and the first reasons."""
    response_class, count_field, json_field = SIGNALS[signal]
    rejected = len(errors)
    message = "; ".join(e.message for e in errors[:5])
    if rejected > 5:
        message += f"; and {rejected - 5} more (see Ingest problems)"
    if "json" in content_type.lower():
        partial_success = {json_field: str(rejected), "errorMessage": message} if rejected else {}
        return JsonResponse({"partialSuccess": partial_success} if rejected else {})
    answer = response_class()
    if rejected:
        setattr(answer.partial_success, count_field, rejected)
        answer.partial_success.error_message = message
    return HttpResponse(answer.SerializeToString(), content_type="application/x-protobuf")


traces = otlp_endpoint("traces")
metrics = otlp_endpoint("metrics")
logs = otlp_endpoint("logs")
