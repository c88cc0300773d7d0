"""GET /healthz: whether this web process can serve, for a load balancer (docs/deployment.md).

200 when every configured database (the primary, and the read replica when there is one)
answers `SELECT 1`; 503 naming the one that does not. The broker is reported but does not fail
the check: ingest keeps accepting data while it is down (the beat sweep catches up).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from config.celery import app

logger = logging.getLogger(__name__)


def _database_answers(alias: str) -> bool:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError as exc:
        logger.warning("health check: database %r does not answer: %s", alias, exc)
        return False


def _broker_answers() -> bool:
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=0, timeout=1)
        return True
    except Exception as exc:  # any transport error means the same thing here
        logger.warning("health check: the broker does not answer: %s", exc)
        return False


@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    checks = {alias: _database_answers(alias) for alias in settings.DATABASES}
    down = [alias for alias, is_up in checks.items() if not is_up]
    body = {
        "status": "unavailable" if down else "ok",
        "databases": {alias: "ok" if is_up else "down" for alias, is_up in checks.items()},
        "broker": "ok" if _broker_answers() else "down",
    }
    if down:
        body["error"] = f"database {', '.join(down)} does not answer"
    return JsonResponse(body, status=503 if down else 200)
