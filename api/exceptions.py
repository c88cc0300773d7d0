"""The REST API's error bodies: `{"error": "...", "field": "..."}`, as ingest answers them."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

AUTH_FIELD = "Authorization"


def error_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with the body reshaped; errors are JSON even when CSV was asked for."""
    response = exception_handler(exc, context)
    if response is None:
        return None
    field, message = first_error(response.data)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        field = AUTH_FIELD
    elif field:
        message = f"{field}: {message}"
    response.data = {"error": message, "field": field}
    logger.info("api refused (%s): %s", response.status_code, message)
    request = context.get("request")
    if getattr(getattr(request, "accepted_renderer", None), "format", None) == "csv":
        request.accepted_renderer = JSONRenderer()  # type: ignore[union-attr]
        request.accepted_media_type = JSONRenderer.media_type  # type: ignore[union-attr]
    return response


def first_error(detail: Any, path: str = "") -> tuple[str, str]:
    """The first (field path, message) in DRF error detail; the path is "" for non-field errors."""
    if isinstance(detail, dict):
        if not detail:
            return path, "Invalid request"
        key, value = next(iter(detail.items()))
        if key in ("detail", "non_field_errors"):
            return first_error(value, path)
        return first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list):
        return first_error(detail[0], path) if detail else (path, "Invalid request")
    return path, str(detail)
