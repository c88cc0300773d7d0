"""DRF authentication by project API key; request.auth carries the key's project."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request

from ingest.auth import AuthError, key_from_request, project_for_key


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key`. The user is anonymous; auth is the Project."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = key_from_request(request._request)
        if raw is None:
            return None
        try:
            project = project_for_key(raw)
        except AuthError as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        return (ApiKeyUser(project), project)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyUser(AnonymousUser):
    """Stands in for a user when a request is authenticated by a project key."""

    def __init__(self, project: Any) -> None:
        super().__init__()
        self.project = project

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True
