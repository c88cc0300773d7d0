"""Read-only output shapes of the REST API, field by field; the CSV header is the same field list.

Rows come from analytics.queries with `session_external_id` / `project_slug` annotated, so no
serializer follows a relation per row.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.scores import score_digest
from api.page_urls import PageUrlField
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import (
    Agent,
    IngestRejection,
    MetricSample,
    Project,
    Score,
    Session,
    Span,
    TranscriptLine,
)


class ProjectSerializer(serializers.ModelSerializer[Project]):
    class Meta:
        model = Project
        fields = ["slug", "name", "created_at"]
        read_only_fields = fields


class SessionSerializer(serializers.ModelSerializer[Session]):
    id = serializers.CharField(source="external_id", help_text="The client's session id.")
    project = serializers.CharField(source="project.slug", help_text="Project slug.")
    parent_session_id = serializers.CharField(source="parent_external_id")
    tags = serializers.ListField(child=serializers.CharField())
    agent_names = serializers.ListField(child=serializers.CharField())
    models_used = serializers.ListField(child=serializers.CharField())
    url = PageUrlField("session-detail", help_text="The session's dashboard page.")
    scores = serializers.SerializerMethodField(
        help_text="Its scores by name: `correct=true; judge=0.8; tone=polite` (means of numbers, "
        "share of true, latest category)."
    )

    class Meta:
        model = Session
        fields = [
            "id",
            "project",
            "name",
            "started_at",
            "ended_at",
            "duration_ms",
            "end_state",
            "end_state_reason",
            "tags",
            "metadata",
            "config",
            "user_query",
            "parent_session_id",
            "group_key",
            "is_inferred",
            "event_count",
            "llm_count",
            "tool_count",
            "error_count",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "has_errors",
            "agent_names",
            "models_used",
            "scores",
            "url",
        ]
        read_only_fields = fields

    def get_scores(self, session: Session) -> str:
        # Read from the list's prefetch (queries.SESSION_SCORES_PREFETCH): no query per row.
        given = session.scores.all()
        return score_digest((s.name, s.data_type, s.value, s.label) for s in given)


class RoundSerializer(serializers.Serializer[dict[str, Any]]):
    """One OTLP trace of a session that spans several (a round of a conversation)."""

    trace_id = serializers.CharField()
    round_index = serializers.IntegerField(
        allow_null=True, help_text="The order the client gave, if any."
    )
    started_at = serializers.DateTimeField(allow_null=True, help_text="Its first span's start.")
    span_count = serializers.IntegerField()


class SessionDetailSerializer(SessionSerializer):
    """A session with `rounds`, which the view reads (analytics.queries.session_rounds) and sets
    on it: empty unless the session's spans came in several OTLP traces."""

    rounds = RoundSerializer(
        many=True,
        read_only=True,
        help_text="The session's traces in round order: round_index, then start time.",
    )

    class Meta(SessionSerializer.Meta):
        fields = [*SessionSerializer.Meta.fields, "rounds"]
        read_only_fields = fields


class EventSerializer(serializers.ModelSerializer[Span]):
    """A span without its payload: what lists show."""

    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    agent_id = serializers.CharField(source="agent_external_id")

    class Meta:
        model = Span
        fields = [
            "id",
            "session_id",
            "project",
            "span_id",
            "parent_span_id",
            "trace_id",
            "kind",
            "name",
            "agent_id",
            "started_at",
            "ended_at",
            "duration_ms",
            "status",
            "model",
            "provider",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "is_cost_estimated",
            "error_type",
            "error_message",
        ]
        read_only_fields = fields


class EventDetailSerializer(EventSerializer):
    """A span with its SpanPayload (null fields when the span has none)."""

    params = serializers.JSONField(source="payload.params", allow_null=True)
    returns = serializers.JSONField(source="payload.returns", allow_null=True)
    prompt = serializers.JSONField(source="payload.prompt", allow_null=True)
    completion = serializers.JSONField(source="payload.completion", allow_null=True)
    stack_trace = serializers.CharField(source="payload.stack_trace", allow_null=True)
    attributes = serializers.JSONField(source="payload.attributes", allow_null=True)
    unmapped_keys = serializers.ListField(
        source="payload.unmapped_keys",
        child=serializers.CharField(),
        allow_null=True,
        help_text="Attribute keys no mapping understood; their values are in `attributes`.",
    )
    detailed_kind = serializers.SerializerMethodField(
        help_text="OTLP spans: workflow, agent, task, guardrail, tool_call_request, embedding…"
        f" (the `{DETAILED_KIND_KEY}` attribute); null when not given."
    )

    class Meta(EventSerializer.Meta):
        fields = [
            *EventSerializer.Meta.fields,
            "detailed_kind",
            "params",
            "returns",
            "prompt",
            "completion",
            "stack_trace",
            "attributes",
            "unmapped_keys",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_detailed_kind(self, span: Span) -> str | None:
        payload = getattr(span, "payload", None)
        detailed = (payload.attributes or {}).get(DETAILED_KIND_KEY) if payload else None
        return detailed if isinstance(detailed, str) else None


class TranscriptLineSerializer(serializers.ModelSerializer[TranscriptLine]):
    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    agent_id = serializers.CharField(source="agent_external_id")

    class Meta:
        model = TranscriptLine
        fields = ["id", "session_id", "role", "text", "agent_id", "span_id", "trace_id", "at"]
        read_only_fields = fields


class AgentNameSerializer(serializers.Serializer[Any]):
    """One agent name over a range (analytics.agent_names.NAME_STAT_COLUMNS)."""

    name = serializers.CharField(help_text="The agent's name (its id when it has none).")
    sessions = serializers.IntegerField(help_text="Sessions with an instance of it.")
    calls = serializers.IntegerField(help_text="Its events: LLM, tool, action and error spans.")
    # The API's column is called errors; DRF builds the output from declared fields, so this
    # shadowing of Serializer.errors is only a name clash for the type checker.
    errors = serializers.IntegerField()  # type: ignore[assignment]
    error_rate = serializers.FloatField(allow_null=True)
    cost = serializers.FloatField(help_text="USD.")
    prompt_tokens = serializers.IntegerField()
    completion_tokens = serializers.IntegerField()
    p95_ms = serializers.FloatField(allow_null=True, help_text="p95 latency of its calls.")
    sent = serializers.IntegerField(help_text="Messages it sent.")
    failed = serializers.IntegerField(help_text="Of those, failed, dead-lettered or expired.")
    last_seen = serializers.DateTimeField(allow_null=True)
    daily_calls = serializers.ListField(
        child=serializers.IntegerField(), help_text="Calls per UTC day of the range."
    )


class AgentSerializer(serializers.ModelSerializer[Agent]):
    # A plain string in the schema: an enum here would collide with the span `status` enum and
    # get a hashed component name (drf-spectacular names enums after the field).
    status = serializers.CharField(help_text="`active` or `terminated`.")
    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    agent_id = serializers.CharField(source="external_id", help_text="The client's agent id.")

    class Meta:
        model = Agent
        fields = [
            "id",
            "session_id",
            "agent_id",
            "name",
            "role",
            "status",
            "init_params",
            "created_at",
            "terminated_at",
            "termination_reason",
        ]
        read_only_fields = fields


class MetricSampleSerializer(serializers.ModelSerializer[MetricSample]):
    session_id = serializers.CharField(
        source="session_external_id", allow_null=True, help_text="Null for project-level samples."
    )
    agent_id = serializers.CharField(source="agent_external_id")

    class Meta:
        model = MetricSample
        fields = ["id", "session_id", "name", "value", "unit", "agent_id", "attributes", "at"]
        read_only_fields = fields


class ScoreSerializer(serializers.ModelSerializer[Score]):
    id = serializers.CharField(source="client_id", help_text="The score's id (its client id).")
    session_id = serializers.CharField(source="session_external_id")
    span_id = serializers.CharField(help_text="The client's span id; blank for the session.")

    class Meta:
        model = Score
        fields = [
            "id",
            "session_id",
            "span_id",
            "name",
            "data_type",
            "value",
            "label",
            "comment",
            "source",
            "author",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class ScoreWriteResultSerializer(serializers.Serializer[Any]):
    accepted = serializers.IntegerField(help_text="New or changed scores.")
    duplicates = serializers.IntegerField(help_text="Scores re-sent exactly as stored.")
    scores = ScoreSerializer(many=True)


class IngestProblemSerializer(serializers.ModelSerializer[IngestRejection]):
    """A refused record, without its raw text (see the detail endpoint)."""

    project = serializers.CharField(source="project_slug", help_text="Project slug.")

    class Meta:
        model = IngestRejection
        fields = [
            "id",
            "project",
            "source",
            "received_at",
            "record_index",
            "record_type",
            "field",
            "message",
            "replayed_at",
            "is_resolved",
        ]
        read_only_fields = fields


class IngestProblemDetailSerializer(IngestProblemSerializer):
    class Meta(IngestProblemSerializer.Meta):
        fields = [*IngestProblemSerializer.Meta.fields, "raw"]
        read_only_fields = fields


def header_of(serializer: serializers.Serializer[Any]) -> list[str]:
    """The CSV header: the serializer's field names, in order."""
    return list(serializer.fields)
