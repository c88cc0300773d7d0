"""DRF authentication by project API key; request.auth carries the key's project."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AnonymousUser
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from ingest.auth import AuthError, key_for_raw, key_from_request, scope_error
from ingest.models import ApiKey


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <key>` or `X-API-Key`. The user is anonymous; auth is the Project."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        raw = key_from_request(request._request)
        if raw is None:
            return None
        try:
            key = key_for_raw(raw, scope=None)  # the scope depends on the view: KeyScopes
        except AuthError as exc:
            raise exceptions.AuthenticationFailed(exc.message) from exc
        return (ApiKeyUser(key.project, key), key.project)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiKeyUser(AnonymousUser):
    """Stands in for a user when a request is authenticated by a project key."""

    def __init__(self, project: Any, key: ApiKey | None = None) -> None:
        super().__init__()
        self.project = project
        self.key = key

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


class KeyScopes(BasePermission):
    """A project key needs the scope of what it asks: `read` to read, `actions` to change
    (requeue, resolve, anomaly status), or the view's own `key_scope` (the poll's `poll`).
    People are judged by their role instead (ingest/access.py)."""

    def has_permission(self, request: Request, view: Any) -> bool:
        key = getattr(request.user, "key", None)
        if not isinstance(key, ApiKey):
            return True
        default = ApiKey.Scope.READ if request.method in SAFE_METHODS else ApiKey.Scope.ACTIONS
        scope = getattr(view, "key_scope", default)
        if not key.allows(scope):
            raise exceptions.PermissionDenied(scope_error(key, scope).message)
        return True
