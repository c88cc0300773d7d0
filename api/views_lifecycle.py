"""Data-lifecycle endpoints: erasure requests (every session of a user id or tag). Deleting one
session is DELETE on the session (api/views.py). Both need the admin role, or a key with the
`erase` scope (docs/access.md); the work is analytics/deletion.py's."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from analytics import deletion
from api.scope import require_person, visible_projects
from api.serializers_lifecycle import ErasureInputSerializer, ErasureSerializer
from ingest import access
from ingest.models import ApiKey, ErasureRequest, Project

ERASE = access.Action.REQUEST_ERASURE


def _erasable_projects(request: Request) -> list[int]:
    """The projects whose erasures the caller may see and request."""
    if isinstance(request.auth, Project):
        return [request.auth.pk]
    return access.projects_where(request.user, ERASE)


class ErasureList(generics.ListCreateAPIView):  # type: ignore[type-arg]
    """Erasure requests, newest first; POST `{"kind": "user_id", "value": "u-42"}` to request
    one: 200 when it ran at once (small), 202 while it runs in the background."""

    serializer_class = ErasureSerializer
    key_scope = ApiKey.Scope.ERASE
    pagination_class = None

    def get_queryset(self) -> QuerySet[ErasureRequest]:
        mine = _erasable_projects(self.request)
        rows = ErasureRequest.objects.filter(project_id__in=mine).select_related("project")
        return rows.order_by("-requested_at", "-pk")[:100]

    @extend_schema(request=ErasureInputSerializer, responses=ErasureSerializer)
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ErasureInputSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        project = _project_for(request, body.validated_data.get("project"))
        require_person(request, project.pk, ERASE)
        erasure = deletion.start_erasure(
            request, project, body.validated_data["kind"], body.validated_data["value"]
        )
        done = erasure.status == ErasureRequest.Status.DONE
        return Response(
            ErasureSerializer(erasure).data,
            status=status.HTTP_200_OK if done else status.HTTP_202_ACCEPTED,
        )


class ErasureDetail(generics.RetrieveAPIView):  # type: ignore[type-arg]
    """One erasure request: poll it until `status` is `done`."""

    serializer_class = ErasureSerializer
    key_scope = ApiKey.Scope.ERASE

    def get_queryset(self) -> QuerySet[ErasureRequest]:
        return ErasureRequest.objects.filter(project_id__in=_erasable_projects(self.request))


def _project_for(request: Request, slug: str | None) -> Project:
    """A key's own project; for a person the `project` named (or their only project)."""
    if isinstance(request.auth, Project):
        if slug and slug != request.auth.slug:
            raise ValidationError({"project": "A project key acts only for its own project."})
        return request.auth
    visible = visible_projects(request)
    projects = Project.objects.filter(pk__in=visible)
    if slug:
        found = projects.filter(slug=slug).first()
        if found is None:
            raise NotFound(f"No project {slug!r} in your projects")
        return found
    mine = list(projects[:2])
    if len(mine) != 1:
        raise ValidationError({"project": "Name the project (its slug): you are in several."})
    return mine[0]
