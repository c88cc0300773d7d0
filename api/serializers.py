"""Read-only output shapes of the REST API, field by field; the CSV header is the same field list.

Rows come from analytics.queries with `session_external_id` / `project_slug` annotated, so no
serializer follows a relation per row.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from analytics.scores import score_digest
from api.page_urls import page_url
from ingest.formats.records import DETAILED_KIND_KEY
from ingest.models import (
    Agent,
    IngestRejection,
    Message,
    MessageEvent,
    MetricSample,
    Project,
    Score,
    Session,
    Span,
    Step,
    TestResult,
    TestRun,
    TranscriptLine,
    Workflow,
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
    url = serializers.SerializerMethodField(help_text="The session's dashboard page.")
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

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, session: Session) -> str:
        return page_url(self.context, "session-detail", session.pk)


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
    errors = serializers.IntegerField()
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


# --- Inter-agent messages, dead letters, workflows ------------------------------------------

# The dashboard's message page (dashboard/urls.py serves it at this path).


class MessageSerializer(serializers.ModelSerializer[Message]):
    """A message without its content: what lists and CSV show."""

    session_id = serializers.CharField(source="session_external_id", help_text="Session id.")
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    receivers = serializers.ListField(child=serializers.CharField())
    status = serializers.CharField(help_text="The latest lifecycle stage.")
    url = serializers.SerializerMethodField(help_text="The message's dashboard page.")

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

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, message: Message) -> str:
        return page_url(self.context, "message-detail", message.pk)


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


# --- Test runs, results, flaky tests, regressions ----------------------------------------------


class TestRunSerializer(serializers.ModelSerializer[TestRun]):
    """A test run with its result counts (annotated by analytics.queries.test_runs_for_projects)."""

    __test__ = False  # pytest: not a test class

    id = serializers.CharField(source="external_id", help_text="The client's run id.")
    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    result_count = serializers.IntegerField()
    pass_count = serializers.IntegerField()
    fail_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    skip_count = serializers.IntegerField()
    xfail_count = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="The run's dashboard page.")

    class Meta:
        model = TestRun
        fields = [
            "id",
            "project",
            "tier",
            "suite",
            "commit",
            "branch",
            "environment",
            "source",
            "started_at",
            "ended_at",
            "is_inferred",
            "result_count",
            "pass_count",
            "fail_count",
            "error_count",
            "skip_count",
            "xfail_count",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, run: TestRun) -> str:
        return page_url(self.context, "test-run-detail", run.pk)


class TestResultSerializer(serializers.ModelSerializer[TestResult]):
    """A test result without its trace, with its run's fields (analytics.queries annotations)."""

    __test__ = False  # pytest: not a test class

    project = serializers.CharField(source="project_slug", help_text="Project slug.")
    run_id = serializers.CharField(source="run_external_id", help_text="The client's run id.")
    run_started_at = serializers.DateTimeField()
    commit = serializers.CharField()
    branch = serializers.CharField()
    suite = serializers.CharField()
    tier = serializers.CharField(source="effective_tier", help_text="The result's or run's tier.")
    session_ids = serializers.ListField(child=serializers.CharField())
    url = serializers.SerializerMethodField(help_text="The result's dashboard page.")

    class Meta:
        model = TestResult
        fields = [
            "id",
            "project",
            "run_id",
            "run_started_at",
            "commit",
            "branch",
            "suite",
            "tier",
            "test_id",
            "name",
            "outcome",
            "duration_ms",
            "started_at",
            "error_message",
            "metrics",
            "scores",
            "session_ids",
            "url",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, result: TestResult) -> str:
        return page_url(self.context, "test-result-detail", result.pk)


class FlakyTestSerializer(serializers.Serializer[dict[str, Any]]):
    """One test's flakiness over the window (analytics.flakiness.flakiness_scores)."""

    test_id = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    suite = serializers.CharField()
    results = serializers.IntegerField(help_text="Decisive results (pass, fail, error).")
    failures = serializers.IntegerField()
    flips = serializers.IntegerField(help_text="Outcome changes between consecutive runs.")
    transient_failures = serializers.IntegerField(help_text="Short failure streaks a pass ended.")
    commits_mixed = serializers.IntegerField(help_text="Commits on which it passed and failed.")
    flakiness = serializers.FloatField(help_text="0 to 1.")
    reliability = serializers.FloatField(help_text="Share of decisive results that passed.")
    is_flaky = serializers.BooleanField()
    last_outcome = serializers.CharField()
    last_run_at = serializers.DateTimeField()
    last_result_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_last_result_url(self, row: dict[str, Any]) -> str:
        return page_url(self.context, "test-result-detail", row["last_result_pk"])


class TestRegressionSerializer(serializers.Serializer[dict[str, Any]]):
    """A test failing since a run after passing before it (analytics.regressions)."""

    __test__ = False  # pytest: not a test class

    branch = serializers.CharField()
    test_id = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    suite = serializers.CharField()
    failing_runs = serializers.IntegerField(help_text="Runs in a row it has failed.")
    first_failing_commit = serializers.CharField()
    first_failing_at = serializers.DateTimeField()
    last_passing_commit = serializers.CharField()
    last_passing_at = serializers.DateTimeField()
    first_failing_result_url = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.URI)
    def get_first_failing_result_url(self, row: dict[str, Any]) -> str:
        return page_url(self.context, "test-result-detail", row["first_failing_result_pk"])


class DurationRegressionSerializer(serializers.Serializer[dict[str, Any]]):
    """A test whose recent passing runs are much slower than before (analytics.regressions)."""

    test_id = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()
    suite = serializers.CharField()
    baseline_ms = serializers.FloatField()
    recent_ms = serializers.FloatField()
    ratio = serializers.FloatField()
    slower_since_commit = serializers.CharField()
    slower_since_at = serializers.DateTimeField()


class DeadLetterActionResultSerializer(serializers.Serializer[dict[str, Any]]):
    """What a resolve or requeue changed, and the messages as they are now."""

    changed = serializers.IntegerField()
    messages = DeadLetterSerializer(many=True)


class PollResultSerializer(serializers.Serializer[dict[str, Any]]):
    """The poll's answer: the poll id sent, and the requeued messages it hands over."""

    poll_id = serializers.CharField()
    messages = PolledMessageSerializer(many=True)
