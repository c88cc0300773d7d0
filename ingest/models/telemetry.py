"""The telemetry of sessions: sessions, agents, spans and their payloads, transcript lines,
metric samples, scores and trace links.

Large agent-written text (prompts, completions, params, returns, stack traces, raw attributes)
lives in SpanPayload so that list and trend queries over Span never load it.
"""

from __future__ import annotations

from django.db import models

from ingest.models.projects import Project


class Session(models.Model):
    """One run of an agent system. Identified by the client's session id within a project."""

    class EndState(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAIL = "fail"
        INDETERMINATE = "indeterminate"

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="sessions", db_index=False
    )  # session_unique starts with project
    external_id = models.CharField(max_length=128, help_text="The session id the client sent.")
    name = models.CharField(max_length=300, blank=True)
    name_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Start of the root span the name was taken from (an inferred session of several "
        "traces is named after its earliest root); empty when a client named the session.",
    )
    started_at = models.DateTimeField(null=True, blank=True, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_state = models.CharField(max_length=20, choices=EndState.choices, default=EndState.RUNNING)
    end_state_reason = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    user_query = models.TextField(blank=True, help_text="The user's first query.")
    parent_external_id = models.CharField(max_length=128, blank=True)
    group_key = models.CharField(max_length=200, blank=True)
    is_inferred = models.BooleanField(
        default=False, help_text="Created from a child record before its session.start arrived."
    )
    # Summary columns, recomputed by analytics.tasks.summarize_sessions after each batch.
    event_count = models.IntegerField(default=0)
    llm_count = models.IntegerField(default=0)
    tool_count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cost = models.FloatField(default=0)
    duration_ms = models.FloatField(null=True, blank=True)
    has_errors = models.BooleanField(default=False, db_index=True)
    agent_names = models.JSONField(default=list, blank=True)
    models_used = models.JSONField(default=list, blank=True)
    is_summary_stale = models.BooleanField(
        default=True, db_index=True, help_text="Set by ingest; cleared when the summary is rebuilt."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="session_unique"),
        ]
        # Plain btrees: a CharField's db_index also builds a LIKE (pattern_ops) twin on
        # PostgreSQL, and nothing matches these by pattern.
        indexes = [
            models.Index(fields=["project", "-started_at"]),
            models.Index(fields=["end_state"], name="session_end_state"),
            models.Index(fields=["parent_external_id"], name="session_parent"),
            models.Index(fields=["group_key"], name="session_group_key"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class Agent(models.Model):
    """An agent as it lived in one session: creation parameters and lifecycle."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        TERMINATED = "terminated"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="agents", db_index=False
    )  # agent_unique starts with session
    external_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200, blank=True)
    role = models.CharField(max_length=200, blank=True)
    init_params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(null=True, blank=True)
    terminated_at = models.DateTimeField(null=True, blank=True)
    termination_reason = models.TextField(blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "external_id"], name="agent_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_id


class Span(models.Model):
    """One step of a session: an action, LLM call, tool call or error. OTLP spans map here too."""

    class Kind(models.TextChoices):
        ACTION = "action"
        LLM = "llm"
        TOOL = "tool"
        ERROR = "error"

    class Status(models.TextChoices):
        UNSET = "unset"
        OK = "ok"
        ERROR = "error"

    # The busiest table: every index and foreign-key check is paid per span at ingest. The
    # store is the only writer and writes a span in the transaction that upserts its session,
    # so the database-level foreign keys (a trigger per row at commit) are left out; Django
    # still cascades deletes. The indexes are the four the pages and analytics read through.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, db_constraint=False, db_index=False
    )
    session = models.ForeignKey(
        Session,
        on_delete=models.CASCADE,
        related_name="spans",
        db_constraint=False,
        db_index=False,  # span_unique starts with session
    )
    span_id = models.CharField(max_length=128)
    parent_span_id = models.CharField(max_length=128, blank=True)
    trace_id = models.CharField(max_length=32, blank=True, help_text="OTLP trace id (hex).")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=300)
    agent_external_id = models.CharField(max_length=128, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UNSET)
    model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.IntegerField(null=True, blank=True)
    completion_tokens = models.IntegerField(null=True, blank=True)
    cost = models.FloatField(null=True, blank=True)
    is_cost_estimated = models.BooleanField(
        default=False, help_text="Cost computed from the model price table, not sent by the client."
    )
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "span_id"], name="span_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "started_at"], name="span_project_started"),
            models.Index(fields=["session", "started_at"], name="span_session_started"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


class SpanPayload(models.Model):
    """The big, agent-written part of a span, loaded only by detail views."""

    span = models.OneToOneField(
        Span,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="payload",
        db_constraint=False,  # written with its span by the store; see Span
    )
    params = models.JSONField(null=True, blank=True)
    returns = models.JSONField(null=True, blank=True)
    prompt = models.JSONField(null=True, blank=True)
    completion = models.JSONField(null=True, blank=True)
    stack_trace = models.TextField(blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    unmapped_keys = models.JSONField(
        default=list, blank=True, help_text="Attribute keys no mapping understood (OTLP)."
    )

    def __str__(self) -> str:
        return f"payload of span {self.pk}"


class TranscriptLine(models.Model):
    """A line of a session's chat stream: a user/assistant message or an agent/llm/tool status."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        SYSTEM = "system"
        AGENT = "agent"
        LLM = "llm"
        TOOL = "tool"
        LOG = "log"

    CONVERSATION_ROLES = (Role.USER, Role.ASSISTANT, Role.SYSTEM)
    STATUS_ROLES = (Role.AGENT, Role.LLM, Role.TOOL, Role.LOG)

    # No foreign-key indexes: transcript_unique starts with project, the (session, at, id) index
    # with session.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="transcript", db_index=False
    )
    client_id = models.CharField(max_length=128)
    role = models.CharField(max_length=10, choices=Role.choices)
    text = models.TextField()
    agent_external_id = models.CharField(max_length=128, blank=True)
    span_id = models.CharField(max_length=128, blank=True)
    trace_id = models.CharField(max_length=32, blank=True)
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="transcript_unique"),
        ]
        indexes = [models.Index(fields=["session", "at", "id"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class MetricSample(models.Model):
    """A numeric sample: memory, CPU, rate-limit hits or any custom metric."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, db_index=False
    )  # metric_unique starts with project
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, null=True, blank=True, related_name="metrics"
    )
    client_id = models.CharField(max_length=128)
    name = models.CharField(max_length=200)
    value = models.FloatField()
    unit = models.CharField(max_length=50, blank=True)
    agent_external_id = models.CharField(max_length=128, blank=True)
    attributes = models.JSONField(default=dict, blank=True, help_text="Dimensions, e.g. model.")
    at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="metric_unique"),
        ]
        indexes = [models.Index(fields=["project", "name", "at"])]

    def __str__(self) -> str:
        return f"{self.name}={self.value}{self.unit}"


class Score(models.Model):
    """A judgement of a session or one of its spans: a number, a category or yes/no, with an
    optional comment. Sent by programs (the native `score` record, POST /api/v1/scores/, OTLP
    evaluation events and attributes) or given by people on the session page. A score is keyed
    by its client id: a re-sent one with the same id replaces the stored one."""

    class DataType(models.TextChoices):
        NUMERIC = "numeric"
        CATEGORICAL = "categorical"
        BOOLEAN = "boolean"

    class Source(models.TextChoices):
        API = "api"
        HUMAN = "human"
        EVAL = "eval"

    # No foreign-key indexes: score_unique starts with project, (session, created_at) with session.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    span_id = models.CharField(
        max_length=128, blank=True, help_text="The client's span id; blank: the whole session."
    )
    client_id = models.CharField(max_length=128, help_text="The score's id, unique per project.")
    name = models.CharField(max_length=200)
    data_type = models.CharField(max_length=12, choices=DataType.choices)
    value = models.FloatField(
        null=True,
        blank=True,
        help_text="The number; 1 or 0 for a boolean (so a mean is the share of yes); "
        "empty for a categorical score.",
    )
    label = models.CharField(
        max_length=200,
        blank=True,
        help_text="The category (categorical), true/false (boolean), or a numeric score's label.",
    )
    comment = models.TextField(blank=True)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.API)
    author = models.CharField(
        max_length=200, blank=True, help_text="Who scored: a user name, a key label, an evaluator."
    )
    created_at = models.DateTimeField(help_text="When the score was given.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="score_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "name", "created_at"]),
            models.Index(fields=["session", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.shown_value}"

    @property
    def shown_value(self) -> str:
        """The value as people read it: the number, the category, or true/false."""
        if self.data_type == self.DataType.NUMERIC and self.value is not None:
            number = f"{self.value:g}"
            return f"{number} ({self.label})" if self.label else number
        return self.label


class TraceLink(models.Model):
    """An OTLP trace that belongs to a named session (one round of a multi-trace conversation).

    Traces without a link are sessions of their own, keyed by their hex trace id."""

    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, db_index=False
    )  # trace_link_unique starts with project
    trace_id = models.CharField(max_length=32)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="trace_links")
    round_index = models.IntegerField(null=True, blank=True)
    reason = models.CharField(
        max_length=300,
        blank=True,
        help_text="Why this trace is in the session, e.g. 'session.id=conv-42'.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "trace_id"], name="trace_link_unique"),
        ]

    def __str__(self) -> str:
        return f"trace {self.trace_id} -> {self.session_id}"
