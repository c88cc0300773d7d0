"""Which projects a request may read: the API key's project, or the user's memberships."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from django.db.models import Model, QuerySet
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request

from analytics.queries import (
    project_list,
    projects_for_user,
    sessions_with_external_id,
)
from ingest import access
from ingest.models import Project, Session

T = TypeVar("T", bound=Model)


def visible_projects(request: Request) -> list[int]:
    """An API key sees its own project; a logged-in user the projects they are a member of.

    Ids, read first: with `project_id IN (<subquery>)` PostgreSQL cannot walk a list's
    (project, started_at) index in order and sorted every span of the project for the first
    page of /api/v1/events/ (350 ms at 1M spans); with the ids written out it reads one page."""
    if isinstance(request.auth, Project):
        return [request.auth.pk]
    return list(projects_for_user(request.user).values_list("pk", flat=True))


def project_of(request: Request) -> int:
    """The one project a request is about: the API key's, `?project=<slug>`, or the user's only
    project (400 naming `project` otherwise)."""
    if isinstance(request.auth, Project):
        return request.auth.pk
    projects = project_list(visible_projects(request))
    slug = request.query_params.get("project", "")
    found = list(projects.filter(slug=slug) if slug else projects[:2])
    if len(found) != 1:
        raise ValidationError({"project": "Name one of your projects: ?project=<slug>"})
    return found[0].pk


def require_person(
    request: Request, project_ids: int | Iterable[int], action: access.Action
) -> None:
    """A logged-in user needs the action's role in each project (403 naming it). A project key
    is judged by its scopes instead, before the view runs (api.authentication.KeyScopes)."""
    if not isinstance(request.auth, Project):
        access.require(request.user, project_ids, action)


def one_by_client_id(request: Request, rows: QuerySet[T], what: str, client_id: str) -> T:
    """The one row of `rows` (already limited to the visible projects) with this client id,
    narrowed by `?project=<slug>`: 404 when there is none; 400 naming `project` when the id is
    in several of the caller's projects (client ids are unique per project only)."""
    slug = request.query_params.get("project")
    if slug and "\x00" in slug:  # PostgreSQL text cannot hold NUL: the query would fail (500)
        raise ValidationError({"project": "must not contain NUL characters"})
    if slug:
        rows = rows.filter(project__slug=slug)
    found = list(rows[:2])
    if not found:
        raise NotFound(f"No {what} {client_id!r} in your projects")
    if len(found) > 1:
        several = f"{what.capitalize()} {client_id!r} exists in several projects"
        raise ValidationError({"project": f"{several}; add ?project=<slug>"})
    return found[0]


def session_for_request(request: Request, external_id: str) -> Session:
    """The visible session with this client id (one_by_client_id)."""
    sessions = sessions_with_external_id(visible_projects(request), external_id)
    return one_by_client_id(request, sessions, "session", external_id)
