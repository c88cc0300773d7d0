"""The audit log: every change a person or API key makes in a project, one `AuditEntry` each.

`record()` is the one way an entry is written. Views and API actions call it inside the
transaction of the change they made (so a change is never kept without its entry), naming the
action, the target and the before/after of the fields that changed. Reading the log needs the
admin role (ingest/access.py: READ_AUDIT_LOG).

It lives in `ingest` next to Membership and ApiKey, the people and keys it is about, rather than
in a fifth app (docs/architecture.md keeps the apps to four).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from ingest.models import ApiKey, AuditEntry

Changes = dict[str, list[Any]]
# What a changed secret looks like in an entry: its value is never kept.
SECRET_CHANGED = "(changed)"
TARGET_CHARS = 300


def diff(
    before: Mapping[str, Any], after: Mapping[str, Any], *, secrets: Iterable[str] = ()
) -> Changes:
    """Pure: `{field: [before, after]}` for each field whose value differs (a field missing on
    one side is None there); secret fields show SECRET_CHANGED instead of either value."""
    hidden = set(secrets)
    changes: Changes = {}
    for field in dict.fromkeys([*before, *after]):
        old, new = before.get(field), after.get(field)
        if old != new:
            changes[field] = [SECRET_CHANGED, SECRET_CHANGED] if field in hidden else [old, new]
    return changes


def change_summary(changes: Mapping[str, Any]) -> str:
    """Pure: `role: viewer → admin; name: "" → "Ops"`, one clause per field, in field order."""
    clauses = []
    for field, value in changes.items():
        if isinstance(value, list | tuple) and len(value) == 2:
            clauses.append(f"{field}: {_shown(value[0])} → {_shown(value[1])}")
        else:
            clauses.append(f"{field}: {_shown(value)}")
    return "; ".join(clauses)


def _shown(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value) or "none"
    return str(value) if value != "" else '""'


def key_label(key: ApiKey) -> str:
    return f"key {key.prefix}… ({key.name})"


def actor_of(request: Any) -> str:
    """Who made the request, as an entry names them: a key's label or the user name."""
    user = getattr(request, "user", None)
    key = getattr(user, "key", None)
    if isinstance(key, ApiKey):
        return key_label(key)[:200]
    if isinstance(user, get_user_model()):
        return user.get_username()[:200]
    return "(anonymous)"


def record(
    request: Any,
    action: AuditEntry.Action,
    *,
    project_id: int,
    target: str,
    changes: Changes | None = None,
) -> AuditEntry:
    """Write one entry for a change made by the request's user or API key (a Django or DRF
    request). Call it in the change's transaction."""
    user = getattr(request, "user", None)
    key = getattr(user, "key", None)
    person = user if isinstance(user, get_user_model()) else None
    return AuditEntry.objects.create(
        project_id=project_id,
        user=person,
        api_key=key if isinstance(key, ApiKey) else None,
        actor=actor_of(request),
        action=action,
        target=target[:TARGET_CHARS],
        changes=changes or {},
        address=request.META.get("REMOTE_ADDR") or None,
    )


def record_background(
    actor: str,
    action: AuditEntry.Action,
    *,
    project_id: int,
    target: str,
    changes: Changes | None = None,
) -> AuditEntry:
    """Write one entry for work the worker finished on someone's behalf (an erasure): `actor`
    is the requester as record() named them, marked as done in the background."""
    return AuditEntry.objects.create(
        project_id=project_id,
        actor=f"{actor} (background)"[:200],
        action=action,
        target=target[:TARGET_CHARS],
        changes=changes or {},
    )


def record_per_project(
    request: Any,
    action: AuditEntry.Action,
    rows: Iterable[tuple[int, int]],
    *,
    noun: str,
    changes: Changes | None = None,
) -> list[AuditEntry]:
    """One entry per project for a change to many rows: `rows` are (pk, project_id); the target
    names them (`dead letters #5, #7, #9`)."""
    by_project: dict[int, list[int]] = {}
    for pk, project_id in rows:
        by_project.setdefault(project_id, []).append(pk)
    return [
        record(
            request,
            action,
            project_id=project_id,
            target=f"{noun} " + ", ".join(f"#{pk}" for pk in sorted(pks)),
            changes=changes,
        )
        for project_id, pks in sorted(by_project.items())
    ]


def entries_for_projects(project_ids: Iterable[int]) -> QuerySet[AuditEntry]:
    """The projects' entries, newest first, with the project's slug at hand."""
    return (
        AuditEntry.objects.filter(project_id__in=list(project_ids))
        .select_related("project")
        .order_by("-at", "-id")
    )
