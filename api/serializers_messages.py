"""Output and input shapes of the message API: inter-agent messages, dead letters and their
actions, polling, workflows, steps and agent edges. Rows come annotated from analytics.queries."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from api.page_urls import PageUrlField
from ingest.models import Message, MessageEvent, Step, Workflow


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A message without its content: what lists and CSV show."""

    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    receivers = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="The latest lifecycle stage.")
    url = PageUrlField("message-detail", help_text="The message's dashboard page.")

    class Meta:
        model = Message
        fields = [
            "id",
            "session_id",
            "project",
            "message_id",
            "sender",
            "receivers",
            "channel",
            "correlation_id",
            "causation_id",
            "content_type",
            "content_size",
            "preview",
            "status",
            "started_at",
            "created_at",
            "sent_at",
            "delivered_at",
            "received_at",
            "processed_at",
            "failed_at",
            "dead_lettered_at",
            "expired_at",
            "delivery_ms",
            "processing_ms",
            "end_to_end_ms",
            "attempt_count",
            "error_type",
            "error_message",
            "last_attempt_at",
            "dead_letter_state",
            "url",
        ]
        read_only_fields = fields


class DeadLetterSerializer(MessageSerializer):
    """A failed, dead-lettered or expired message with what was done about it."""

    class Meta(MessageSerializer.Meta):
        fields = [
            *MessageSerializer.Meta.fields,
            "resolved_at",
            "resolution_note",
            "requeued_at",
            "requeue_count",
            "polled_at",
        ]
        read_only_fields = fields


class MessageEventSerializer(serializers.ModelSerializer[MessageEvent]):
    agent_id = serializers.CharField(source="agent_external_id")

    class Meta:
        model = MessageEvent
        fields = ["stage", "at", "agent_id", "attempt", "error_type", "error_message"]
        read_only_fields = fields


class MessageDetailSerializer(DeadLetterSerializer):
    """A message with its content, metadata, lifecycle records and causality chain (message ids
    of its ancestors, nearest first, and descendants), which the view sets on it."""

    content = serializers.JSONField(source="body.content", allow_null=True)
    metadata = serializers.JSONField(source="body.metadata", allow_null=True)
    events = MessageEventSerializer(many=True, read_only=True, source="event_list")
    ancestors = serializers.ListField(child=serializers.CharField(), read_only=True)
    descendants = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta(DeadLetterSerializer.Meta):
        fields = [
            *DeadLetterSerializer.Meta.fields,
            "content",
            "metadata",
            "events",
            "ancestors",
            "descendants",
        ]
        read_only_fields = fields


class PolledMessageSerializer(serializers.ModelSerializer[Message]):
    """A requeued message as the agent system gets it back from the poll endpoint."""

    session_id = serializers.CharField(source="session.external_id")
    receivers = serializers.ListField(child=serializers.CharField())
    content = serializers.JSONField(source="body.content", allow_null=True)
    metadata = serializers.JSONField(source="body.metadata", allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "session_id",
            "message_id",
            "sender",
            "receivers",
            "channel",
            "correlation_id",
            "causation_id",
            "content_type",
            "content",
            "metadata",
            "attempt_count",
            "error_type",
            "error_message",
            "requeued_at",
            "requeue_count",
        ]
        read_only_fields = fields


class WorkflowSerializer(serializers.ModelSerializer[Workflow]):
    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    status = serializers.CharField(help_text="running, success, fail or cancelled.")
    step_count = serializers.IntegerField()
    expected_duration = serializers.SerializerMethodField(
        help_text="A running run's expected total and remaining time (ms): median and 80 % "
        "interval of finished runs of its name; null otherwise and in CSV."
    )

    class Meta:
        model = Workflow
        fields = [
            "id",
            "session_id",
            "project",
            "workflow_id",
            "name",
            "status",
            "started_at",
            "ended_at",
            "duration_ms",
            "step_count",
            "result_summary",
            "metadata",
            "is_inferred",
            "expected_duration",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_expected_duration(self, workflow: Workflow) -> dict[str, Any] | None:
        forecast = self.context.get("expected_durations", {}).get(workflow.pk)
        return None if forecast is None else asdict(forecast)


class StepSerializer(serializers.ModelSerializer[Step]):
    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    workflow_id = serializers.CharField(source="workflow_external_id", help_text="Run id.")
    workflow_name = serializers.CharField()
    agent_id = serializers.CharField(source="agent_external_id")
    depends_on = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="running, ok, error, skipped or cancelled.")

    class Meta:
        model = Step
        fields = [
            "id",
            "session_id",
            "workflow_id",
            "workflow_name",
            "step_id",
            "name",
            "agent_id",
            "depends_on",
            "status",
            "started_at",
            "ended_at",
            "duration_ms",
            "result_summary",
            "error_type",
            "error_message",
        ]
        read_only_fields = fields


class AgentEdgeSerializer(serializers.Serializer[dict[str, Any]]):
    """One sender→receiver edge of the agent graph over a time range."""

    sender = serializers.CharField()
    receiver = serializers.CharField()
    messages = serializers.IntegerField()
    failed = serializers.IntegerField()
    failure_rate = serializers.FloatField()
    p95_delivery_ms = serializers.FloatField(allow_null=True)


class DeadLetterActionSerializer(serializers.Serializer[dict[str, Any]]):
    """Input of the bulk dead-letter actions: which messages, and a note when resolving."""

    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=1000)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class PollSerializer(serializers.Serializer[dict[str, Any]]):
    """Input of the requeue poll: a poll id chosen by the poller (send the same one again to get
    the same messages after a lost answer) and how many messages at most."""

    poll_id = serializers.CharField(max_length=128)
    limit = serializers.IntegerField(min_value=1, max_value=500, default=100)


class DeadLetterActionResultSerializer(serializers.Serializer[dict[str, Any]]):
    """What a resolve or requeue changed, and the messages as they are now."""

    changed = serializers.IntegerField()
    messages = DeadLetterSerializer(many=True)


class PollResultSerializer(serializers.Serializer[dict[str, Any]]):
    """The poll's answer: the poll id sent, and the requeued messages it hands over."""

    poll_id = serializers.CharField()
    messages = PolledMessageSerializer(many=True)
