"""API-key authentication for ingest and the REST API: one indexed lookup per key and process
every OBSERVATORY_API_KEY_CACHE_SECONDS (docs/access.md says what that delays)."""

from __future__ import annotations

import time

from django.conf import settings
from django.core import signing
from django.db import connection
from django.http import HttpRequest
from django.utils import timezone

from ingest import sql
from ingest.models import ApiKey, Project, hash_api_key

KEY_HEADERS_HINT = "Authorization: Bearer <key> or X-API-Key: <key>"


class AuthError(Exception):
    """401 for a missing or unknown credential; 403 for a key without the scope it needs."""

    def __init__(self, message: str, *, field: str = "Authorization", status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


def key_from_request(request: HttpRequest) -> str | None:
    """The raw key from `Authorization: Bearer` or `X-API-Key`, or None when neither is sent."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.headers.get("X-API-Key", "").strip() or None


def project_for_key(raw_key: str, *, scope: str = ApiKey.Scope.INGEST) -> Project:
    """The project a live key with `scope` belongs to; AuthError for an unknown or revoked key
    (401) or one without the scope (403)."""
    return key_for_raw(raw_key, scope=scope).project


def key_for_raw(raw_key: str, *, scope: str | None) -> ApiKey:
    """The live key (its project loaded), checked for `scope` unless None; marks it used."""
    key = _live_key(raw_key, field="Authorization", scope=scope)
    now = timezone.now()
    # Write last_used_at at most once a minute so a busy key does not add a write per request.
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now  # the cached key too, or every request would write it
    return key


def project_for_request(request: HttpRequest) -> Project:
    raw = key_from_request(request)
    if raw is None:
        raise AuthError(f"Missing API key: send {KEY_HEADERS_HINT}")
    return project_for_key(raw)


# agentops SDK credentials. The 0.4 SDK swaps its API key for a bearer token once and never
# refreshes it, so tokens do not expire; revoking the key revokes every token made from it.
AGENTOPS_TOKEN_SALT = "observatory.agentops.token"
AGENTOPS_SESSION_SALT = "observatory.agentops.session"


def issue_agentops_token(raw_key: str) -> tuple[Project, str]:
    """The project and a bearer token for a raw API key (POST /v3/auth/token)."""
    key = _live_key(raw_key)
    return key.project, signing.dumps({"k": key.pk}, salt=AGENTOPS_TOKEN_SALT)


def issue_agentops_session_token(project: Project, raw_key: str | None, session_id: str) -> str:
    """A legacy (0.2/0.3) session JWT: names the project's key and the one session it may write."""
    key_pk = _live_key(raw_key).pk if raw_key else None
    return signing.dumps(
        {"p": project.pk, "k": key_pk, "s": session_id}, salt=AGENTOPS_SESSION_SALT
    )


def agentops_session_for_token(token: str) -> tuple[Project, str]:
    """(project, session id) of a legacy session JWT; AuthError when it is not one of ours."""
    try:
        claims = signing.loads(token, salt=AGENTOPS_SESSION_SALT)
    except signing.BadSignature as exc:
        raise AuthError("Invalid session token") from exc
    if (
        claims.get("k") is not None
        and not ApiKey.objects.filter(pk=claims["k"], revoked_at__isnull=True).exists()
    ):
        raise AuthError("The API key behind this session token was revoked")
    project = Project.objects.filter(pk=claims["p"]).first()
    if project is None:
        raise AuthError("Invalid session token")
    return project, str(claims["s"])


def project_for_otlp_request(request: HttpRequest) -> Project:
    """OTLP and agentops 0.4 endpoints: a bearer token from /v3/auth/token or a project API key,
    as `Authorization: Bearer`, `X-API-Key` or `X-Agentops-Api-Key` (the header agentops users
    add with OTEL_EXPORTER_OTLP_TRACES_HEADERS to close the SDK's token race)."""
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if bearer and not ApiKey.looks_like_key(bearer):
        return _project_for_agentops_token(bearer)
    raw = (
        bearer
        or request.headers.get("X-API-Key", "").strip()
        or request.headers.get("X-Agentops-Api-Key", "").strip()
    )
    if not raw:
        raise AuthError(
            "Missing credentials: send Authorization: Bearer <API key or token>, X-API-Key or "
            "X-Agentops-Api-Key"
        )
    return project_for_key(raw)


def _project_for_agentops_token(token: str) -> Project:
    try:
        claims = signing.loads(token, salt=AGENTOPS_TOKEN_SALT)
    except signing.BadSignature as exc:
        raise AuthError(
            "Unknown bearer token: not an API key nor a token from /v3/auth/token"
        ) from exc
    key = (
        ApiKey.objects.select_related("project")
        .filter(pk=claims.get("k"), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        raise AuthError("The API key behind this token was revoked")
    if not key.allows(ApiKey.Scope.INGEST):
        raise scope_error(key, ApiKey.Scope.INGEST)
    return key.project


def _live_key(
    raw_key: str, *, field: str = "api_key", scope: str | None = ApiKey.Scope.INGEST
) -> ApiKey:
    key = _live_key_by_hash(hash_api_key(raw_key.strip()))
    if key is None:
        raise AuthError("Unknown or revoked API key", field=field)
    if scope is not None and not key.allows(scope):
        raise scope_error(key, scope, field=field)
    return key


def scope_error(key: ApiKey, scope: str, *, field: str = "Authorization") -> AuthError:
    return AuthError(
        f"This API key ({key.prefix}…) may not {ApiKey.Scope(scope).label}: it has the scopes "
        f"{key.scopes!r}; make one with the {scope!r} scope (create_api_key --scope {scope})",
        field=field,
        status=403,
    )


# key hash -> (time.monotonic() when read, the live key with its project): this process's
# recent answers. A one-span OTLP request spent a fifth of its CPU reading the same key again.
_recent_keys: dict[str, tuple[float, ApiKey]] = {}
# Past this many keys the cache starts again: it holds only keys in use, so this is a guard.
MAX_CACHED_KEYS = 1000


def forget_cached_keys() -> None:
    """Drop this process's cached keys, so a change made here (a revocation) applies at once;
    other processes see it within OBSERVATORY_API_KEY_CACHE_SECONDS."""
    _recent_keys.clear()


def _live_key_by_hash(key_hash: str) -> ApiKey | None:
    """The unrevoked key with this hash, its project loaded, or None; as read at most
    OBSERVATORY_API_KEY_CACHE_SECONDS ago by this process. Unknown keys are not cached: a key
    made a moment ago works at once."""
    now = time.monotonic()
    recent = _recent_keys.get(key_hash)
    if recent is not None and now - recent[0] < settings.OBSERVATORY_API_KEY_CACHE_SECONDS:
        return recent[1]
    key = _read_live_key(key_hash)
    if key is None:
        _recent_keys.pop(key_hash, None)
        return None
    if len(_recent_keys) >= MAX_CACHED_KEYS:
        _recent_keys.clear()
    _recent_keys[key_hash] = (now, key)
    return key


def _read_live_key(key_hash: str) -> ApiKey | None:
    """Written out (ingest/sql.py) because the ORM's compile of the same select_related() query
    cost a one-span OTLP request 1-2 ms of CPU."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sql.columns(ApiKey, 'k')}, {sql.columns(Project, 'p')} "
            f"FROM {ApiKey._meta.db_table} k JOIN {Project._meta.db_table} p "
            "ON p.id = k.project_id WHERE k.key_hash = %s AND k.revoked_at IS NULL",
            [key_hash],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    split = sql.field_count(ApiKey)
    key = sql.from_row(ApiKey, row[:split])
    key.project = sql.from_row(Project, row[split:])
    return key
