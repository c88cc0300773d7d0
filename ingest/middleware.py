"""A database that cannot be reached answers 503 with Retry-After, on every endpoint.

Clients retry a 503 (OTLP exporters, the agentops SDK, our SDK) and drop on a 500, so a database
restart must never look like a bug: nothing was stored, send it again. The ingest views that
answer their own 503 keep doing so; this catches every other view (the agentops v2/v4 endpoints,
replays, pages, the API).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = "5"
MESSAGE = "The server cannot reach its database right now; nothing was stored. Retry later."
# Paths whose clients are programs: they get JSON, people get a short page.
PROGRAM_PATH_PREFIXES = ("/api/", "/v1/", "/v2/", "/v3/", "/v4/")


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError):
            return None
        logger.warning(
            "%s %s: database unavailable, answering 503: %s",
            request.method,
            request.path,
            exception,
        )
        response: HttpResponse
        if request.path.startswith(PROGRAM_PATH_PREFIXES):
            response = JsonResponse({"error": MESSAGE, "field": ""}, status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = RETRY_AFTER_SECONDS
        return response
