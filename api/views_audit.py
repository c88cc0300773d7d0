"""`/api/v1/audit/`: the audit log of the projects where the signed-in person is an admin or
owner, filterable, as JSON pages or `?format=csv`. Project keys are refused: the log names
people and their addresses, which is for the project's admins, not its agents."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request

from api.filters_audit import AuditFilter
from api.serializers_audit import AuditEntrySerializer
from api.views import ListView
from ingest import access, audit
from ingest.models import Project


class AuditEntryList(ListView):
    """Changes people and keys made, newest first."""

    serializer_class = AuditEntrySerializer
    filterset_class = AuditFilter
    csv_filename = "audit.csv"

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if isinstance(request.auth, Project):
            raise PermissionDenied("The audit log is for a project's admins, signed in; not keys.")

    def get_queryset(self) -> QuerySet[Any]:
        readable = access.projects_where(self.request.user, access.Action.READ_AUDIT_LOG)
        return audit.entries_for_projects(readable)
