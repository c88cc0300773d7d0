"""Query-string filters of the analytics endpoints (django-filter); see api/filters.py."""

from __future__ import annotations

from typing import Any

import django_filters as filters
from django.db.models import QuerySet

from analytics.models import (
    AlertEvent,
    Anomaly,
    ErrorCluster,
    Incident,
    Report,
    Rollup,
    SessionFlag,
)
from analytics.trends import FREQS
from api.filters import ProjectFilterSet, UtcIsoDateTimeFilter, json_list_contains


class RollupFilter(ProjectFilterSet):
    granularity = filters.ChoiceFilter(choices=[(g, g) for g in FREQS])
    since = UtcIsoDateTimeFilter(field_name="bucket_start", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="bucket_start", lookup_expr="lt")

    class Meta:
        model = Rollup
        fields = ["project", "granularity", "kind", "agent", "model", "tool"]


class AnomalyFilter(ProjectFilterSet):
    status = filters.ChoiceFilter(choices=Anomaly.Status.choices)
    since = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="lt")

    class Meta:
        model = Anomaly
        fields = ["project", "status", "metric", "subject_type", "subject"]


class IncidentFilter(ProjectFilterSet):
    status = filters.ChoiceFilter(choices=Incident.Status.choices)
    since = UtcIsoDateTimeFilter(field_name="window_end", lookup_expr="gte")
    until = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="lt")
    opened_after = UtcIsoDateTimeFilter(field_name="opened_at", lookup_expr="gte")

    class Meta:
        model = Incident
        fields = ["project", "status", "metric", "subject_type", "subject", "top_dimension"]


class SessionFlagFilter(ProjectFilterSet):
    session_id = filters.CharFilter(field_name="session__external_id", label="Session id.")

    class Meta:
        model = SessionFlag
        fields = ["project", "detector", "session_id"]


class ErrorClusterFilter(ProjectFilterSet):
    seen_after = UtcIsoDateTimeFilter(field_name="last_seen_at", lookup_expr="gte")
    agent = filters.CharFilter(method="filter_agent", label="Clusters that reached this agent.")

    class Meta:
        model = ErrorCluster
        fields = ["project", "error_type"]

    def filter_agent(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        return queryset.filter(json_list_contains("agents", value))


class AlertEventFilter(ProjectFilterSet):
    rule = filters.NumberFilter(field_name="rule_id")

    class Meta:
        model = AlertEvent
        fields = ["project", "rule", "state", "is_test"]


class ReportFilter(ProjectFilterSet):
    class Meta:
        model = Report
        fields = ["project", "period"]
