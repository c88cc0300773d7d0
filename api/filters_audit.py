"""Query-string filters of the audit log (`/api/v1/audit/` and the dashboard's audit page)."""

from __future__ import annotations

import django_filters as filters

from api.filters import ProjectFilterSet, UtcIsoDateTimeFilter
from ingest.models import AuditEntry


class AuditFilter(ProjectFilterSet):
    action = filters.ChoiceFilter(choices=AuditEntry.Action.choices)
    actor = filters.CharFilter(lookup_expr="icontains", label="Who (part of a user name or key).")
    target = filters.CharFilter(lookup_expr="icontains", label="What (part of the target).")
    since = UtcIsoDateTimeFilter(field_name="at", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["project", "action", "actor", "target"]
