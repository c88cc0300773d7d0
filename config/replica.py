"""The optional read replica (DATABASE_REPLICA_URL, docs/deployment.md): dashboard pages and the
read API read telemetry and derived data from it; every write, and every other read, goes to the
primary.

A replica lags its primary by a moment, so three kinds of read stay on the primary: anything
inside a transaction on the primary (it may read what that transaction wrote; a test's
transaction too), the requests of a browser or client that wrote within the last
OBSERVATORY_REPLICA_PIN_SECONDS (a form post followed by its redirect must show the change), and
the poll of requeued messages (an agent system calls it as soon as the webhook tells it to).
Logins, sessions and lockouts (auth, sessions, axes) always use the primary.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve

REPLICA = "replica"
# The apps whose rows the pages and the read API show.
REPLICATED_APPS = frozenset({"ingest", "analytics"})
READ_NAMESPACES = frozenset({"dashboard", "api"})
PRIMARY_ONLY_VIEWS = frozenset({"api:requeued-message-poll"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PIN_COOKIE = "observatory_primary"

_reads_from_replica: ContextVar[bool] = ContextVar("reads_from_replica", default=False)


class ReplicaRouter:
    """Django database router: replica reads only while a read request has switched them on."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        if not _reads_from_replica.get() or model._meta.app_label not in REPLICATED_APPS:
            return DEFAULT_DB_ALIAS
        if connections[DEFAULT_DB_ALIAS].in_atomic_block:
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # both aliases hold the same rows

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS


def _read_view_name(request: HttpRequest) -> str | None:
    """The view name when the request is for a page or the read API, else None."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return None
    return match.view_name if match.namespace in READ_NAMESPACES else None


class ReplicaMiddleware:
    """Switches replica reads on for a read request of the pages or the API; after a write
    through them, pins the client to the primary for OBSERVATORY_REPLICA_PIN_SECONDS with a
    cookie. (A streamed body, such as a CSV export, is produced after this returns, so it reads
    the primary.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        view_name = _read_view_name(request)
        is_read = request.method in SAFE_METHODS
        token = _reads_from_replica.set(
            is_read
            and view_name is not None
            and view_name not in PRIMARY_ONLY_VIEWS
            and PIN_COOKIE not in request.COOKIES
        )
        try:
            response = self.get_response(request)
        finally:
            _reads_from_replica.reset(token)
        if not is_read and view_name is not None and response.status_code < 400:
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=settings.OBSERVATORY_REPLICA_PIN_SECONDS,
                httponly=True,
                samesite="Lax",
            )
        return response
