"""The projects a caller may see, the scope every scoped read of the package takes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db.models import F, Model, QuerySet

from ingest.models import Project

# A caller's visible projects: a Project QuerySet (used as a subquery) or a list of ids.
ProjectScope = QuerySet[Project] | Sequence[int]

M = TypeVar("M", bound=Model)


def newest_first(model: type[M], projects: ProjectScope, newest: str, **joined: str) -> QuerySet[M]:
    """The model's rows in the visible projects, the newest `newest` first (ties: the higher id),
    each annotated with the joined fields: `joined` maps an annotation name to its lookup path,
    so rows carry e.g. `project_slug` without joined rows."""
    return (
        model._default_manager.filter(project__in=projects)
        .annotate(**{name: F(path) for name, path in joined.items()})
        .order_by(f"-{newest}", "-id")
    )


def projects_for_user(user: Any) -> QuerySet[Project]:
    """Projects the user is a member of. Superusers get no implicit access; anonymous gets none."""
    if not getattr(user, "is_authenticated", False) or user.pk is None:
        return Project.objects.none()
    return Project.objects.filter(membership__user=user)


def project_list(projects: ProjectScope) -> QuerySet[Project]:
    """The visible projects, ordered by slug."""
    # A queryset of projects is a subquery here; the stubs only know lists of ids for pk__in.
    return Project.objects.filter(pk__in=projects).order_by("slug", "id")  # type: ignore[misc]


def project_ids() -> list[int]:
    return list(Project.objects.order_by("pk").values_list("pk", flat=True))


def project_ids_for_slug(slug: str | None) -> list[int]:
    """Every project's id (slug None), or the one project with this slug (empty if none)."""
    projects = Project.objects.order_by("pk")
    if slug is not None:
        projects = projects.filter(slug=slug)
    return list(projects.values_list("pk", flat=True))


def raw_removed_before(project_id: int) -> datetime | None:
    """The time before which retention removed the project's raw telemetry (None: never)."""
    return (
        Project.objects.filter(pk=project_id).values_list("raw_removed_before", flat=True).first()
    )
