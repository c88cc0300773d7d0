"""Output shapes of the analytics endpoints (trends, anomalies, session flags, error clusters,
alerts, reports, cohorts, forecasts), field by field; the CSV header is the same field list."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from analytics.models import (
    AlertEvent,
    AlertRule,
    Anomaly,
    ErrorCluster,
    Incident,
    Report,
    Rollup,
    SessionFlag,
)
from api.page_urls import page_url


class RollupSerializer(serializers.ModelSerializer[Rollup]):
    """A stored rollup row, agents by name (its latency histogram left out)."""

    project = serializers.CharField(source="project_slug", help_text="Project slug.")

    class Meta:
        model = Rollup
        fields = [
            "project",
            "granularity",
            "bucket_start",
            "agent",
            "model",
            "tool",
            "kind",
            "count",
            "error_count",
            "rate_limit_count",
            "timed_count",
            "latency_p50_ms",
            "latency_p95_ms",
            "latency_p99_ms",
            "prompt_tokens",
            "completion_tokens",
            "token_call_count",
            "cost",
            "step_count",
            "message_count",
        ]
        read_only_fields = fields


class TrendSeriesSerializer(serializers.Serializer[dict[str, Any]]):
    """One bucket of one group (agent, model, tool or kind) of a trend chart."""

    bucket = serializers.DateTimeField()
    group = serializers.CharField(help_text="The agent, model, tool or kind; empty for none.")
    count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    rate_limit_count = serializers.IntegerField()
    latency_p50_ms = serializers.FloatField(allow_null=True)
    latency_p95_ms = serializers.FloatField(allow_null=True)
    latency_p99_ms = serializers.FloatField(allow_null=True)
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    tokens_per_call = serializers.FloatField(allow_null=True)
    cost = serializers.FloatField()


class AnomalySerializer(serializers.ModelSerializer[Anomaly]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    example_session_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Session pks (dashboard /sessions/<pk>/)."
    )

    class Meta:
        model = Anomaly
        fields = [
            "id",
            "project",
            "subject_type",
            "subject",
            "metric",
            "window_start",
            "window_end",
            "observed",
            "baseline",
            "score",
            "sample_count",
            "is_seasonal",
            "top_dimension",
            "top_share",
            "example_session_ids",
            "explanation",
            "status",
            "status_changed_at",
            "detected_at",
        ]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer[Incident]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    example_session_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Session pks (dashboard /sessions/<pk>/)."
    )
    anomaly_ids = serializers.SerializerMethodField(help_text="Its flags (/anomalies/).")

    class Meta:
        model = Incident
        fields = [
            "id",
            "project",
            "status",
            "window_start",
            "window_end",
            "subject_type",
            "subject",
            "metric",
            "observed",
            "baseline",
            "score",
            "top_dimension",
            "flag_count",
            "anomaly_ids",
            "example_session_ids",
            "explanation",
            "opened_at",
            "closed_at",
        ]
        read_only_fields = fields

    def get_anomaly_ids(self, incident: Incident) -> list[int]:
        return sorted(anomaly.pk for anomaly in incident.anomalies.all())


class AnomalyStatusSerializer(serializers.Serializer[dict[str, Any]]):
    """POST body of /anomalies/<id>/status/."""

    status = serializers.ChoiceField(choices=Anomaly.Status.choices)


class SessionFlagSerializer(serializers.ModelSerializer[SessionFlag]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    session_url = serializers.SerializerMethodField(help_text="The session's dashboard page.")

    class Meta:
        model = SessionFlag
        fields = [
            "project",
            "session_id",
            "detector",
            "detail",
            "evidence_count",
            "detected_at",
            "session_url",
        ]
        read_only_fields = fields

    def get_session_url(self, flag: SessionFlag) -> str:
        return page_url(self.context, "session-detail", flag.session_id)


class ErrorClusterSerializer(serializers.ModelSerializer[ErrorCluster]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    example_session_id = serializers.CharField(
        source="example_session_external_id", allow_null=True, help_text="Session id."
    )
    agents = serializers.ListField(child=serializers.CharField())

    class Meta:
        model = ErrorCluster
        fields = [
            "id",
            "project",
            "fingerprint",
            "error_type",
            "pattern",
            "count",
            "first_seen_at",
            "last_seen_at",
            "agents",
            "example_message",
            "example_session_id",
        ]
        read_only_fields = fields


class AlertRuleSerializer(serializers.ModelSerializer[AlertRule]):
    """A rule without its signing secret."""

    project = serializers.CharField(source="project_slug", help_text="Project slug.")

    class Meta:
        model = AlertRule
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "metric",
            "agent",
            "model",
            "tool",
            "score_name",
            "window_minutes",
            "comparator",
            "threshold",
            "channel",
            "target",
            "renotify_minutes",
            "is_enabled",
            "state",
            "state_changed_at",
            "last_value",
            "last_evaluated_at",
            "last_notified_at",
            "created_at",
        ]
        read_only_fields = fields


class AlertEventSerializer(serializers.ModelSerializer[AlertEvent]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    rule = serializers.CharField(source="rule_name")

    class Meta:
        model = AlertEvent
        fields = [
            "id",
            "project",
            "rule_id",
            "rule",
            "at",
            "state",
            "previous_state",
            "value",
            "message",
            "is_test",
            "is_delivered",
            "delivery_error",
        ]
        read_only_fields = fields


class ReportSerializer(serializers.ModelSerializer[Report]):
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    csv_url = serializers.SerializerMethodField(help_text="The report's CSV.")

    class Meta:
        model = Report
        fields = [
            "id",
            "project",
            "period",
            "period_start",
            "period_end",
            "created_at",
            "emailed_at",
            "csv_url",
        ]
        read_only_fields = fields

    def get_csv_url(self, report: Report) -> str:
        path = f"/api/v1/reports/{report.pk}/csv/"
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class CohortDifferenceSerializer(serializers.Serializer[dict[str, Any]]):
    metric = serializers.CharField()
    # DRF's metaclass takes declared fields off the class, so this does not shadow Field.label.
    label = serializers.CharField()  # type: ignore[assignment]
    a_mean = serializers.FloatField(allow_null=True)
    b_mean = serializers.FloatField(allow_null=True)
    a_count = serializers.IntegerField()
    b_count = serializers.IntegerField()
    difference = serializers.FloatField(allow_null=True, help_text="b minus a.")
    relative = serializers.FloatField(allow_null=True, help_text="difference / a_mean.")
    p_value = serializers.FloatField(allow_null=True, help_text="Permutation test, two-sided.")
    is_significant = serializers.BooleanField()


class ForecastSerializer(serializers.Serializer[dict[str, Any]]):
    day = serializers.DateTimeField()
    kind = serializers.CharField(help_text="actual or forecast")
    value = serializers.FloatField()
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
