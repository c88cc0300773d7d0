"""Thin ingest endpoints: authenticate, parse, store, answer. Logic is in formats/ and store/."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingest.auth import AuthError, project_for_request
from ingest.formats.junit import JUnitRun, parse_junit
from ingest.formats.native import decode_body, parse_native
from ingest.formats.records import BodyError, RecordError
from ingest.middleware import RETRY_AFTER_SECONDS
from ingest.models import Project
from ingest.signals import announce_sessions_stored, announce_test_results_stored
from ingest.store import (
    OUTAGE_ERRORS,
    SaveResult,
    save_records,
    save_records_or_reject,
    save_rejections,
)

logger = logging.getLogger(__name__)

# Bodies that are refused whole are still kept (as one rejection), up to this size.
MAX_KEPT_BODY_BYTES = 256 * 1024


def error(message: str, status: int, *, field: str = "") -> JsonResponse:
    logger.info("ingest refused (%s): %s", status, message)
    response = JsonResponse({"error": message, "field": field}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="ingest"'
    return response


def unavailable(what: str, exc: Exception) -> JsonResponse:
    """503 with Retry-After: the database is down or locked past its timeout, nothing was
    stored; every client we serve retries it (ingest/middleware.py says why)."""
    logger.warning("%s: database unavailable, answering 503: %s", what, exc)
    response = error("The server cannot store data right now; retry later", 503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def with_project(
    authenticate: Callable[[HttpRequest], Project],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """The view gets the project its credential names after the request, or the client gets the
    credential's refusal (401 or 403 naming the header)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def authenticated(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                project = authenticate(request)
            except AuthError as exc:
                return error(exc.message, exc.status, field=exc.field)
            return view(request, project, *args, **kwargs)

        return authenticated

    return decorate


@csrf_exempt
@require_POST
@with_project(project_for_request)
def native_batch(request: HttpRequest, project: Project) -> JsonResponse:
    """POST /api/v1/ingest: a JSON batch of typed records (docs/ingest-api.md)."""
    try:
        body = read_body(request)
        parsed = parse_native(
            body,
            max_records=settings.OBSERVATORY_MAX_BATCH_RECORDS,
            max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS,
        )
    except BodyError as exc:
        keep_refused_body(project, request, exc)
        return error(exc.message, exc.status, field=exc.field)
    try:
        saved, errors = save_records_or_reject(project, parsed.records, parsed.errors)
    except OUTAGE_ERRORS as exc:
        return unavailable("ingest", exc)
    announce_sessions_stored(saved.session_pks)
    if saved.test_run_pks:
        announce_test_results_stored([project.pk])
    return JsonResponse(batch_answer(parsed.records, errors, saved))


# Query parameters of a JUnit upload and their length limits.
JUNIT_PARAMS = {
    "tier": 50,
    "suite": 200,
    "commit": 64,
    "branch": 200,
    "environment": 100,
    "run_id": 128,
}


@csrf_exempt
@require_POST
@with_project(project_for_request)
def junit_upload(request: HttpRequest, project: Project) -> JsonResponse:
    """POST /api/v1/test-runs/junit?tier=&suite=&commit=&branch=: a JUnit XML report as the body
    (or as the `file` field of a form). All or nothing: a bad report is a 400 and stores nothing."""
    try:
        parsed = parse_junit(
            _junit_body(request),
            _junit_run(request),
            now=timezone.now(),
            max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS,
        )
        saved = save_records(project, parsed.records, source="junit")
    except BodyError as exc:
        return error(exc.message, exc.status, field=exc.field)
    except OUTAGE_ERRORS as exc:
        return unavailable("junit upload", exc)
    except DatabaseError as exc:
        # A report is all or nothing: one value the database refuses refuses the report.
        return error(f"The database refused the report: {str(exc).splitlines()[0]}", 400)
    announce_test_results_stored([project.pk])
    run = parsed.records[0][1]
    return JsonResponse(
        {
            "run_id": getattr(run, "run_id", ""),
            "results": len(parsed.records) - 1,
            "accepted": saved.accepted,
            "duplicates": saved.duplicates,
        }
    )


def _junit_run(request: HttpRequest) -> JUnitRun:
    values = {name: request.GET.get(name, "").strip() for name in JUNIT_PARAMS}
    for name, limit in JUNIT_PARAMS.items():
        if len(values[name]) > limit:
            raise BodyError(f"{name} is limited to {limit} characters", field=name)
    return JUnitRun(**values)


# A multipart form adds boundaries and part headers around the report.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _junit_body(request: HttpRequest) -> bytes:
    if request.content_type == "multipart/form-data":
        # Checked before request.FILES, which would spool a big upload to disk first.
        limit = settings.OBSERVATORY_MAX_BATCH_BYTES + MULTIPART_OVERHEAD_BYTES
        _refuse_declared_length_over(limit, request)
        upload = request.FILES.get("file")
        if upload is None:
            raise BodyError(
                "Send the report as the body, or as the form field 'file'", field="file"
            )
        if upload.size and upload.size > settings.OBSERVATORY_MAX_BATCH_BYTES:
            raise BodyError("The report exceeds OBSERVATORY_MAX_BATCH_BYTES", status=413)
        return bytes(upload.read())
    return read_body(request)


def read_body(request: HttpRequest) -> bytes:
    """The decoded body; 413 before reading anything larger than the limit."""
    limit = settings.OBSERVATORY_MAX_BATCH_BYTES
    _refuse_declared_length_over(limit, request)
    encoding = request.headers.get("Content-Encoding", "")
    return decode_body(request.body, encoding, max_bytes=limit)


def keep_refused_body(
    project: Project, request: HttpRequest, exc: BodyError, *, source: str = "native"
) -> None:
    """Keep a refused body (when small enough to hold) so a bad batch is visible and replayable."""
    if exc.status == 413 or int(request.META.get("CONTENT_LENGTH") or 0) > MAX_KEPT_BODY_BYTES:
        return
    try:
        raw: Any = decode_body(
            request.body, request.headers.get("Content-Encoding", ""), max_bytes=MAX_KEPT_BODY_BYTES
        )
    except BodyError:
        raw = request.body
    save_rejections(
        project,
        [RecordError(index=None, field=exc.field, message=exc.message, raw=raw)],
        source=source,
    )


def batch_answer(
    records: list[tuple[int, Any]], errors: list[RecordError], saved: SaveResult
) -> dict[str, Any]:
    results: list[dict[str, Any]] = [
        {"index": index, "id": record.record_id, "status": saved.statuses[index]}
        for index, record in records
        if index in saved.statuses  # not when the database refused it: then it is in errors
    ]
    results += [
        {
            "index": e.index,
            "id": (e.raw.get("id") or e.raw.get("record_id")) if isinstance(e.raw, dict) else None,
            "status": "error",
            "field": e.field,
            "error": e.message,
        }
        for e in errors
    ]
    results.sort(key=lambda r: r["index"])
    return {
        "accepted": saved.accepted,
        "duplicates": saved.duplicates,
        "rejected": len(errors),
        "results": results,
    }


def _refuse_declared_length_over(limit: int, request: HttpRequest) -> None:
    """413 from the Content-Length header alone, before any of the body is read."""
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not raw.isdecimal():
        raise BodyError(f"Content-Length is not a number: {raw[:20]!r}", field="Content-Length")
    if int(raw) > limit:
        raise BodyError(
            f"Body is {int(raw)} bytes; the limit OBSERVATORY_MAX_BATCH_BYTES is "
            f"{settings.OBSERVATORY_MAX_BATCH_BYTES}",
            status=413,
        )
