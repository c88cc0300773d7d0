"""API-key authentication for ingest and the REST API: one indexed lookup per request."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils import timezone

from ingest.models import ApiKey, Project, hash_api_key

KEY_HEADERS_HINT = "Authorization: Bearer <key> or X-API-Key: <key>"


class AuthError(Exception):
    def __init__(self, message: str, *, field: str = "Authorization") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def key_from_request(request: HttpRequest) -> str | None:
    """The raw key from `Authorization: Bearer` or `X-API-Key`, or None when neither is sent."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key", "").strip() or None


def project_for_key(raw_key: str) -> Project:
    """The project a live key belongs to; AuthError for an unknown or revoked key."""
    key = (
        ApiKey.objects.select_related("project")
        .filter(key_hash=hash_api_key(raw_key), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        raise AuthError("Unknown or revoked API key")
    now = timezone.now()
    # Write last_used_at at most once a minute so a busy key does not add a write per request.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.project


def project_for_request(request: HttpRequest) -> Project:
    raw = key_from_request(request)
    if raw is None:
        raise AuthError(f"Missing API key: send {KEY_HEADERS_HINT}")
    return project_for_key(raw)
