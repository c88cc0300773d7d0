"""The agentops SDK's own endpoints: 0.4 auth and uploads, and the legacy 0.2/0.3 v2 REST API.

Answers have exactly the shapes the SDK reads (docs/agentops-protocol.md); its traces go to
views_otlp.traces. Thin: authenticate, parse (ingest/formats/agentops.py), store, answer.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from ingest.auth import (
    AuthError,
    agentops_session_for_token,
    issue_agentops_session_token,
    issue_agentops_token,
    project_for_key,
    project_for_otlp_request,
)
from ingest.formats import agentops
from ingest.formats.records import BodyError, ParseResult, session_id_of
from ingest.models import Project, Session, UploadedObject
from ingest.signals import announce_sessions_stored
from ingest.store import SaveResult, redacted_text, save_records_or_reject
from ingest.views import error, keep_refused_body, read_body, with_project

logger = logging.getLogger(__name__)


def _store(project: Project, parsed: ParseResult, *, source: str) -> SaveResult:
    saved, _ = save_records_or_reject(project, parsed.records, parsed.errors, source=source)
    announce_sessions_stored(saved.session_pks)
    return saved


def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        body = json.loads(read_body(request))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BodyError(f"Body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BodyError("Body must be a JSON object")
    return body


def session_url(session_id: str) -> str:
    """The link the SDK prints; /sessions?trace_id= redirects to the session page."""
    return f"{settings.SITE_URL.rstrip('/')}/sessions/?trace_id={session_id}"


@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"message": "Server Up"})


@csrf_exempt
@require_POST
def auth_token(request: HttpRequest) -> JsonResponse:
    """POST /v3/auth/token {"api_key"} -> the bearer token the 0.4 SDK sends with its spans."""
    try:
        raw_key = _json_body(request).get("api_key")
    except BodyError as exc:
        return error(exc.message, exc.status)
    if not isinstance(raw_key, str) or not raw_key.strip():
        return error("api_key is required", 400, field="api_key")
    try:
        project, token = issue_agentops_token(raw_key)
    except AuthError as exc:
        return error(exc.message, 403, field="api_key")
    return JsonResponse(
        {"token": token, "project_id": str(project.pk), "project_prem_status": "pro"}
    )


@csrf_exempt
@require_POST
@with_project(project_for_otlp_request)
def logs_upload(request: HttpRequest, project: Project) -> JsonResponse:
    """POST /v4/logs/upload/ with header Trace-Id (decimal): the agent's captured print() lines."""
    try:
        body = read_body(request)
        parsed = agentops.parse_agentops_log_upload(
            body,
            request.headers.get("Trace-Id", ""),
            max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS,
        )
    except BodyError as exc:
        keep_refused_body(project, request, exc, source="agentops-logs")
        return error(exc.message, exc.status, field=exc.field)
    _store(project, parsed, source="agentops-logs")
    trace_id = agentops.trace_id_from_header(request.headers["Trace-Id"])
    return JsonResponse({"url": session_url(trace_id), "size": len(body)})


@csrf_exempt
@require_POST
@with_project(project_for_otlp_request)
def objects_upload(request: HttpRequest, project: Project) -> JsonResponse:
    """POST /v4/objects/upload/ {"body": str}: kept and readable at the answered URL."""
    try:
        text = _json_body(request).get("body")
    except BodyError as exc:
        return error(exc.message, exc.status)
    if not isinstance(text, str):
        return error("body must be a string", 400, field="body")
    stored = UploadedObject.objects.create(project=project, body=redacted_text(project, text))
    url = f"{settings.SITE_URL.rstrip('/')}/objects/{stored.pk}/"
    return JsonResponse({"url": url, "size": len(text.encode())})


# Legacy v2 (agentops 0.2.x-0.3.x). Errors are {"message": ...}: that is what the client logs.


def legacy_error(message: str, status: int) -> JsonResponse:
    logger.info("agentops v2 refused (%s): %s", status, message)
    return JsonResponse({"message": message, "error": message}, status=status)


def _legacy_key(request: HttpRequest) -> str:
    return request.headers.get("X-Agentops-Api-Key", "").strip()


def _legacy_project(request: HttpRequest) -> Project:
    if not _legacy_key(request):
        raise AuthError("Missing X-Agentops-Api-Key header")
    return project_for_key(_legacy_key(request))


def _legacy_session(request: HttpRequest, body: dict[str, Any]) -> tuple[Project, str]:
    """The session a v2 call writes to: from its session JWT, else the API key plus the body's
    session id (0.3 sends the key on every call)."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if token:
        return agentops_session_for_token(token)
    project = _legacy_project(request)
    nested = body.get("session")
    session: dict[str, Any] = nested if isinstance(nested, dict) else body
    session_id = str(session.get("session_id") or session.get("id") or "")
    if not session_id:
        raise AuthError("Without a session token the body must name session_id")
    return project, session_id


@csrf_exempt
@require_POST
def v2_create_session(request: HttpRequest) -> JsonResponse:
    try:
        project = _legacy_project(request)
        parsed = agentops.parse_v2_create_session(read_body(request))
    except (AuthError, BodyError) as exc:
        return legacy_error(exc.message, exc.status)
    _store(project, parsed, source="agentops-v2")
    session_id = _session_id_of(parsed)
    token = issue_agentops_session_token(project, _legacy_key(request), session_id)
    return JsonResponse({"status": "Success", "jwt": token, "session_url": session_url(session_id)})


def _session_id_of(parsed: ParseResult) -> str:
    return next((sid for _, record in parsed.records if (sid := session_id_of(record))), "")


@csrf_exempt
@require_POST
def v2_update_session(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
        project, session_id = _legacy_session(request, body)
        parsed = agentops.parse_v2_update_session(json.dumps(body).encode())
    except (AuthError, BodyError) as exc:
        return legacy_error(exc.message, exc.status)
    if _session_id_of(parsed) not in ("", session_id):
        return legacy_error("The session token is for another session", 403)
    _store(project, parsed, source="agentops-v2")
    cost = (
        Session.objects.filter(project=project, external_id=session_id)
        .values_list("cost", flat=True)
        .first()
    )
    return JsonResponse(
        {
            "status": "success",
            "token_cost": f"{cost or 0:.2f}",
            "session_url": session_url(session_id),
        }
    )


@csrf_exempt
@require_POST
def v2_create_events(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
        project, session_id = _legacy_session(request, body)
        parsed = agentops.parse_v2_create_events(
            json.dumps(body).encode(),
            session_id=session_id,
            max_string_chars=settings.OBSERVATORY_MAX_STRING_CHARS,
        )
    except (AuthError, BodyError) as exc:
        return legacy_error(exc.message, exc.status)
    _store(project, parsed, source="agentops-v2")
    return JsonResponse("Success", safe=False)


@csrf_exempt
@require_POST
def v2_create_agent(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
        project, session_id = _legacy_session(request, body)
        parsed = agentops.parse_v2_create_agent(json.dumps(body).encode(), session_id=session_id)
    except (AuthError, BodyError) as exc:
        return legacy_error(exc.message, exc.status)
    _store(project, parsed, source="agentops-v2")
    return JsonResponse("Success", safe=False)


@csrf_exempt
@require_POST
def v2_reauthorize_jwt(request: HttpRequest) -> JsonResponse:
    try:
        project = _legacy_project(request)
        session_id = str(_json_body(request).get("session_id") or "")
    except (AuthError, BodyError) as exc:
        return legacy_error(exc.message, exc.status)
    if not session_id:
        return legacy_error("session_id is required", 400)
    token = issue_agentops_session_token(project, _legacy_key(request), session_id)
    return JsonResponse({"status": "Success", "jwt": token})


def object_text(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /objects/<pk>/: an uploaded object, for members of its project."""
    if not request.user.is_authenticated:
        return error("Log in to read uploaded objects", 401)
    stored = UploadedObject.objects.filter(pk=pk, project__members=request.user).first()
    if stored is None:
        return error("No such object", 404)
    return HttpResponse(stored.body, content_type="text/plain; charset=utf-8")
