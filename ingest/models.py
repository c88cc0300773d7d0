"""The telemetry system of record: projects, keys, sessions, agents, spans, transcripts, metrics.

Ingest writes these tables (through ingest/store.py); the API and dashboard only read them.
Large agent-written text (prompts, completions, params, returns, stack traces, raw attributes)
lives in SpanPayload so that list and trend queries over Span never load it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from ingest.formats.records import MESSAGE_STAGES


def new_webhook_secret() -> str:
    """A project's requeue webhook signing secret (64 hex characters)."""
    return secrets.token_hex(32)


class Project(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    session_attributes = models.CharField(
        max_length=300,
        blank=True,
        help_text="OTLP span attributes (comma-separated) that name the session a trace belongs "
        "to, checked before session.id, session_id and gen_ai.conversation.id.",
    )
    requeue_webhook_url = models.URLField(
        blank=True,
        help_text="Called (POST, JSON) when dead letters are requeued, besides the poll endpoint.",
    )
    requeue_webhook_secret = models.CharField(
        max_length=64,
        default=new_webhook_secret,
        help_text="Signs the requeue webhook: X-Observatory-Signature (docs/ingest-api.md).",
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="projects"
    )
    # Data lifecycle (docs/lifecycle.md): blank retention falls back to the server's defaults.
    raw_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days raw telemetry (spans, payloads, transcript, messages, metric samples, "
        "ledger, ingest problems) is kept; blank: OBSERVATORY_RAW_RETENTION_DAYS; 0: forever.",
    )
    derived_retention_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Days sessions with their summaries, rollups, anomalies and incidents are "
        "kept; blank: OBSERVATORY_DERIVED_RETENTION_DAYS; 0: forever.",
    )
    raw_removed_before = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Raw telemetry before this time was removed by retention: pages say so, and "
        "the analytics refresh does not rebuild rollups of those days from what is left.",
    )
    is_redaction_enabled = models.BooleanField(
        default=False, help_text="Redact personal data and secrets at ingest, before storing."
    )
    redaction_detectors = models.JSONField(
        default=list, blank=True, help_text="Built-in detectors in use (ingest/redaction.py)."
    )
    redaction_patterns = models.JSONField(
        default=list, blank=True, help_text='Custom patterns: [{"name": …, "pattern": …}] (RE2).'
    )

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        """What a member may change: ingest/access.py (reading needs only membership)."""

        VIEWER = "viewer"
        MEMBER = "member"
        ADMIN = "admin"
        OWNER = "owner"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "project"], name="membership_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.project} ({self.role})"


def canonical_api_key(raw_key: str) -> str:
    """A UUID-shaped key in its one spelling (lower case, hyphens), so every form agentops' own
    `UUID(api_key)` check accepts (upper case, braces, no hyphens) finds the same key. Other keys
    (the `obs_…` keys issued before UUID-shaped ones) are returned as they are."""
    try:
        return str(uuid.UUID(raw_key))
    except ValueError:
        return raw_key


def hash_api_key(raw_key: str) -> str:
    return hashlib.sha256(canonical_api_key(raw_key).encode()).hexdigest()


class ApiKey(models.Model):
    """A project credential. Only its SHA-256 is stored; the raw key is shown once at creation.

    New keys are random UUIDs (122 random bits) because agentops 0.2/0.3 refuse any key that
    `uuid.UUID()` cannot parse, before sending anything. Keys issued earlier start with `obs_`
    and keep working."""

    LEGACY_PREFIX = "obs_"

    class Scope(models.TextChoices):
        """What a key may do; checked in ingest/auth.py (ingest) and api/authentication.py."""

        INGEST = "ingest", "send telemetry"
        READ = "read", "read the API, prompts and contents included"
        ACTIONS = "actions", "requeue and resolve dead letters, change anomaly status"
        POLL = "poll", "take requeued messages from the poll"
        ERASE = "erase", "delete sessions and request erasures"

    # What a key gets unless scopes are named: every scope but `erase`, which deletes data and
    # is only given when asked for.
    ALL_SCOPES = "ingest read actions poll"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, default="default")
    # Space-separated Scope values. Keys made before scopes existed keep all of them.
    scopes = models.CharField(max_length=64, default=ALL_SCOPES)
    created_by = models.CharField(max_length=150, blank=True, help_text="Who made the key.")
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @classmethod
    def generate(
        cls,
        project: Project,
        name: str = "default",
        *,
        scopes: Iterable[str] = ALL_SCOPES.split(),
        created_by: str = "",
    ) -> tuple[ApiKey, str]:
        raw = str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))
        wanted = [cls.Scope(scope).value for scope in scopes]
        if not wanted:
            raise ValueError("a key needs at least one scope")
        # The first 8 characters (32 of the 122 random bits) are shown to recognise a key.
        key = cls.objects.create(
            project=project,
            name=name,
            prefix=raw[:8],
            key_hash=hash_api_key(raw),
            scopes=" ".join(s for s in cls.Scope.values if s in wanted),
            created_by=created_by,
        )
        return key, raw

    def allows(self, scope: str) -> bool:
        return scope in self.scopes.split()

    @classmethod
    def looks_like_key(cls, text: str) -> bool:
        """Whether `text` has the shape of an API key (rather than, say, a signed token)."""
        try:
            uuid.UUID(text)
        except ValueError:
            return text.startswith(cls.LEGACY_PREFIX)
        return True


class Session(models.Model):
    """One run of an agent system. Identified by the client's session id within a project."""

    class EndState(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAIL = "fail"
        INDETERMINATE = "indeterminate"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
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
    end_state = models.CharField(
        max_length=20, choices=EndState.choices, default=EndState.RUNNING, db_index=True
    )
    end_state_reason = models.TextField(blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    config = models.JSONField(default=dict, blank=True)
    user_query = models.TextField(blank=True, help_text="The user's first query.")
    parent_external_id = models.CharField(max_length=128, blank=True, db_index=True)
    group_key = models.CharField(max_length=200, blank=True, db_index=True)
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
        indexes = [models.Index(fields=["project", "-started_at"])]

    def __str__(self) -> str:
        return self.name or self.external_id


class Agent(models.Model):
    """An agent as it lived in one session: creation parameters and lifecycle."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        TERMINATED = "terminated"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="agents")
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="transcript")
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="scores")
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

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
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


class ModelPrice(models.Model):
    """A per-project override of the built-in model price table (ingest/prices.json).

    Prices are USD per million tokens. `model` matches a model name exactly, or as a shell-style
    pattern (`gpt-4o*`) when it contains a wildcard; exact matches win."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_prices")
    model = models.CharField(max_length=200)
    input_per_million = models.FloatField()
    output_per_million = models.FloatField()
    cached_input_per_million = models.FloatField(null=True, blank=True)
    reasoning_per_million = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "model"], name="model_price_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.model}: ${self.input_per_million}/${self.output_per_million} per 1M"


class UploadedObject(models.Model):
    """A body sent to agentops' /v4/objects/upload/, readable back at the URL we answer."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"object {self.pk} ({len(self.body)} chars)"


class ReceivedRecord(models.Model):
    """Ledger of client record ids already accepted: what makes a retried batch a no-op."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    record_id = models.CharField(max_length=128)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "record_id"], name="received_unique"),
        ]

    def __str__(self) -> str:
        return self.record_id


class PendingRequest(models.Model):
    """A small OTLP request answered but not yet stored: its body, committed before the answer
    and landed (parsed again and stored with other pending requests of its project) just after
    it, by ingest/landing.py. Deleted in the transaction that stores its records."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    signal = models.CharField(max_length=10, help_text="traces, metrics or logs")
    content_type = models.CharField(max_length=200, blank=True)
    body = models.BinaryField(help_text="The request body as decoded (no Content-Encoding).")
    received_at = models.DateTimeField()
    leased_until = models.DateTimeField(
        null=True, blank=True, help_text="A landing holds this row until then."
    )

    def __str__(self) -> str:
        return f"{self.signal} request of {self.received_at:%Y-%m-%d %H:%M:%S}"


class IngestRejection(models.Model):
    """A record (or body) ingest refused, kept with its reason so it can be fixed and replayed."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="rejections")
    source = models.CharField(max_length=20, default="native")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    record_index = models.IntegerField(null=True, blank=True)
    record_type = models.CharField(max_length=50, blank=True)
    field = models.CharField(max_length=300, blank=True)
    message = models.TextField()
    raw = models.TextField(help_text="The rejected record as received (JSON text).")
    replayed_at = models.DateTimeField(null=True, blank=True)
    is_resolved = models.BooleanField(default=False, db_index=True)
    fingerprint = models.CharField(
        max_length=64, help_text="Hash of raw record and reason: a retried bad batch is kept once."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(message=""), name="rejection_has_message"),
            models.UniqueConstraint(fields=["project", "fingerprint"], name="rejection_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.field or self.source}: {self.message[:80]}"

    @staticmethod
    def fingerprint_of(message: str, raw: str) -> str:
        return hashlib.sha256(f"{message}\0{raw}".encode()).hexdigest()


class TestRun(models.Model):
    """One run of a test suite (from the native API, a JUnit XML upload or the pytest plugin).

    Identified by the client's run id within a project. Created *inferred* when a result arrives
    before its test_run.start."""

    __test__ = False  # pytest: a model, not a test class

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="test_runs")
    external_id = models.CharField(max_length=128, help_text="The run id the client sent.")
    tier = models.CharField(
        max_length=50,
        blank=True,
        help_text="unit, integration, scenario, chaos or a project-defined tier; blank when the "
        "run mixes tiers (each result then carries its own).",
    )
    suite = models.CharField(max_length=200, blank=True)
    commit = models.CharField(max_length=64, blank=True, help_text="Git commit the run tested.")
    branch = models.CharField(max_length=200, blank=True)
    environment = models.CharField(max_length=100, blank=True)
    source = models.CharField(max_length=20, default="native", help_text="native, junit, pytest.")
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_inferred = models.BooleanField(
        default=False, help_text="Created from a result before its test_run.start arrived."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "external_id"], name="test_run_unique"),
        ]
        indexes = [models.Index(fields=["project", "-started_at"])]

    def __str__(self) -> str:
        return f"{self.suite or 'run'} {self.external_id}"


class TestResult(models.Model):
    """The outcome of one test in one run. The trace is big text: list queries never read it."""

    __test__ = False  # pytest: a model, not a test class

    class Outcome(models.TextChoices):
        PASS = "pass"
        FAIL = "fail"
        ERROR = "error"
        SKIP = "skip"
        XFAIL = "xfail"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    run = models.ForeignKey(TestRun, on_delete=models.CASCADE, related_name="results")
    test_id = models.CharField(max_length=500, help_text="Stable test id (e.g. a pytest node id).")
    name = models.CharField(max_length=500, blank=True)
    tier = models.CharField(max_length=50, blank=True, help_text="Blank: the run's tier.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    duration_ms = models.FloatField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)
    error_trace = models.TextField(blank=True)
    metrics = models.JSONField(
        default=dict, blank=True, help_text="Numbers the test reported, e.g. tokens or cost."
    )
    session_ids = models.JSONField(
        default=list, blank=True, help_text="Client ids of the agent sessions the test produced."
    )
    scores = models.JSONField(
        default=list,
        blank=True,
        help_text="The test's judgements of the answer: [{name, data_type, value, label, "
        "comment}], also stored as scores of the sessions it produced.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "test_id"], name="test_result_unique"),
        ]
        indexes = [models.Index(fields=["project", "test_id"])]

    def __str__(self) -> str:
        return f"{self.test_id}: {self.outcome}"


# --- Multi-agent systems: inter-agent messages and workflows ----------------------------------


class Message(models.Model):
    """A message one agent sent to others (not a chat transcript line).

    Built from lifecycle records (created, sent, delivered, …) that may arrive in any order; the
    merge rules and derived timings are in ingest/lifecycle.py. Its content lives in
    MessageContent, so lists and the sequence diagram never load it.
    """

    # Message.Stage.DEAD_LETTERED etc., built from the one list of stages.
    Stage = models.TextChoices("Stage", [(stage.upper(), stage) for stage in MESSAGE_STAGES])

    class DeadLetterState(models.TextChoices):
        NONE = "", "not a dead letter"
        OPEN = "open"
        RESOLVED = "resolved"
        REQUEUED = "requeued"
        RECOVERED = "recovered"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="agent_messages")
    message_id = models.CharField(max_length=128, help_text="The client's message id.")
    sender = models.CharField(max_length=128, blank=True, help_text="Sending agent id.")
    receivers = models.JSONField(
        default=list, blank=True, help_text="Receiving agent ids, as the client named them."
    )
    channel = models.CharField(max_length=200, blank=True, help_text="Channel, topic or queue.")
    correlation_id = models.CharField(
        max_length=128, blank=True, db_index=True, help_text="The message this one replies to."
    )
    causation_id = models.CharField(
        max_length=128, blank=True, db_index=True, help_text="The message that caused this one."
    )
    content_type = models.CharField(max_length=100, blank=True)
    content_size = models.IntegerField(null=True, blank=True, help_text="Content size in bytes.")
    preview = models.CharField(
        max_length=200, blank=True, help_text="The start of the content, for lists and hovers."
    )
    status = models.CharField(
        max_length=20, choices=Stage.choices, default=Stage.CREATED, db_index=True
    )
    started_at = models.DateTimeField(help_text="The earliest lifecycle time seen.")
    created_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    dead_lettered_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    delivery_ms = models.FloatField(null=True, blank=True, help_text="Sent to delivered.")
    processing_ms = models.FloatField(
        null=True, blank=True, help_text="Received (or delivered) to processed."
    )
    end_to_end_ms = models.FloatField(
        null=True, blank=True, help_text="Created (or sent) to processed."
    )
    attempt_count = models.IntegerField(default=0)
    retry_count = models.IntegerField(default=0)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    dead_letter_state = models.CharField(
        max_length=10, choices=DeadLetterState.choices, blank=True, default="", db_index=True
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution_note = models.CharField(max_length=500, blank=True)
    requeued_at = models.DateTimeField(null=True, blank=True)
    requeue_count = models.IntegerField(default=0)
    poll_id = models.CharField(
        max_length=128, blank=True, help_text="The poll that handed the requeued message over."
    )
    polled_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "message_id"], name="message_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "started_at"]),
            models.Index(fields=["session", "started_at", "id"]),
            models.Index(fields=["project", "dead_letter_state", "started_at"]),
            models.Index(fields=["project", "poll_id"]),
        ]

    def __str__(self) -> str:
        return f"{self.sender or '?'} -> {', '.join(self.receivers) or '?'}: {self.message_id}"


class MessageContent(models.Model):
    """A message's content and metadata, loaded only by detail views and the requeue poll."""

    message = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="body"
    )
    content = models.JSONField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"content of message {self.pk}"


class MessageEvent(models.Model):
    """One lifecycle record of a message as received: its stage timeline on the detail page."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="events")
    client_id = models.CharField(max_length=128)
    stage = models.CharField(max_length=20, choices=Message.Stage.choices)
    at = models.DateTimeField()
    agent_external_id = models.CharField(
        max_length=128, blank=True, help_text="The agent that reported this stage."
    )
    attempt = models.IntegerField(null=True, blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "client_id"], name="message_event_unique"),
        ]
        indexes = [models.Index(fields=["message", "at"])]

    def __str__(self) -> str:
        return f"{self.stage} at {self.at:%H:%M:%S}"


class MessageMappingRule(models.Model):
    """OTLP: which span attributes carry a message's fields, for frameworks with their own
    conventions (TaskWeaver's post spans carry in.from, in.recipient and in.message)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="message_rules")
    name = models.CharField(max_length=100)
    span_name = models.CharField(
        max_length=300, blank=True, help_text="Only spans with this name (blank: any span)."
    )
    sender_attribute = models.CharField(max_length=200)
    receiver_attribute = models.CharField(max_length=200)
    content_attribute = models.CharField(max_length=200, blank=True)
    channel_attribute = models.CharField(max_length=200, blank=True)
    message_id_attribute = models.CharField(
        max_length=200, blank=True, help_text="Blank: the span id is the message id."
    )
    correlation_attribute = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="message_rule_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class Workflow(models.Model):
    """One run of a workflow in a session: started, its steps, completed."""

    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCESS = "success"
        FAIL = "fail"
        CANCELLED = "cancelled"

    project = models.ForeignKey(Project, on_delete=models.CASCADE)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="workflows")
    workflow_id = models.CharField(max_length=128, help_text="The client's workflow run id.")
    name = models.CharField(max_length=300, blank=True, db_index=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    is_inferred = models.BooleanField(
        default=False, help_text="Created from a step before workflow.start arrived."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "workflow_id"], name="workflow_unique"),
        ]
        indexes = [
            models.Index(fields=["project", "name", "started_at"]),
            # The workflows page and API list a range's newest runs first: without it, every run
            # of the project was read and sorted (190 ms at 50,000 runs).
            models.Index(fields=["project", "started_at"], name="workflow_project_started"),
        ]

    def __str__(self) -> str:
        return self.name or self.workflow_id


class Step(models.Model):
    """One step of a workflow run, with the agent that ran it and the steps it waited for."""

    class Status(models.TextChoices):
        RUNNING = "running"
        OK = "ok"
        ERROR = "error"
        SKIPPED = "skipped"
        CANCELLED = "cancelled"

    # Written by COPY, one per task span: no database-level foreign keys, as for Span.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_constraint=False)
    workflow = models.ForeignKey(
        Workflow,
        on_delete=models.CASCADE,
        related_name="steps",
        db_constraint=False,
        db_index=False,  # step_unique starts with workflow
    )
    step_id = models.CharField(max_length=128)
    name = models.CharField(max_length=300, blank=True)
    agent_external_id = models.CharField(max_length=128, blank=True)
    depends_on = models.JSONField(
        default=list, blank=True, help_text="Step ids this step waited for."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    result_summary = models.TextField(blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.CharField(max_length=2000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workflow", "step_id"], name="step_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.step_id


class AuditEntry(models.Model):
    """One change a person or API key made in a project: who, when, what, from which address.

    Written only by ingest/audit.py: record(), which views and API actions call in the same
    transaction as the change. `actor` keeps the name as it was, so an entry still says who
    after the user or key is deleted."""

    class Action(models.TextChoices):
        PROJECT_CREATE = "project.create", "created the project"
        PROJECT_UPDATE = "project.update", "changed the project's settings"
        MEMBER_ADD = "member.add", "added a member"
        MEMBER_ROLE = "member.role", "changed a member's role"
        MEMBER_REMOVE = "member.remove", "removed a member"
        KEY_CREATE = "key.create", "created an API key"
        KEY_REVOKE = "key.revoke", "revoked an API key"
        PRICE_SAVE = "price.save", "saved a model price override"
        PRICE_DELETE = "price.delete", "deleted a model price override"
        MESSAGE_RULE_SAVE = "message_rule.save", "saved a message mapping rule"
        MESSAGE_RULE_DELETE = "message_rule.delete", "deleted a message mapping rule"
        ALERT_RULE_SAVE = "alert_rule.save", "saved an alert rule"
        ALERT_RULE_DELETE = "alert_rule.delete", "deleted an alert rule"
        ALERT_RULE_TEST = "alert_rule.test", "sent a test notification"
        REPORT_SCHEDULE = "report_schedule.save", "changed the report schedule"
        REPORT_MAKE = "report.make", "made a report"
        DEAD_LETTER_REQUEUE = "dead_letter.requeue", "requeued dead letters"
        DEAD_LETTER_RESOLVE = "dead_letter.resolve", "resolved dead letters"
        ANOMALY_STATUS = "anomaly.status", "changed an anomaly's status"
        PROBLEM_REPLAY = "ingest_problem.replay", "replayed an ingest problem"
        SCORE_SAVE = "score.save", "scored a session or span"
        SCORE_DELETE = "score.delete", "deleted a score"
        SESSION_DELETE = "session.delete", "deleted a session"
        ERASURE_REQUEST = "erasure.request", "requested an erasure"
        ERASURE_DONE = "erasure.done", "finished an erasure"
        LIFECYCLE_UPDATE = "lifecycle.update", "changed retention or redaction"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="audit_entries")
    at = models.DateTimeField(default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    api_key = models.ForeignKey(ApiKey, on_delete=models.SET_NULL, null=True, blank=True)
    actor = models.CharField(
        max_length=200, help_text="A user name, or `key <prefix>… (<label>)`, as it was."
    )
    action = models.CharField(max_length=40, choices=Action.choices)
    target = models.CharField(max_length=300, help_text="What was changed, e.g. `key 1a2b3c4d…`.")
    changes = models.JSONField(
        default=dict, blank=True, help_text='{"field": [before, after]}; secrets as "(changed)".'
    )
    address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-at"])]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target}"


class ErasureRequest(models.Model):
    """A request to delete every session of an end user id or of a tag, run in the background
    (ingest/deletion.py). The value itself is cleared once the sessions are gone, and only its
    SHA-256 kept: the log of an erasure must not keep what it erased."""

    class Kind(models.TextChoices):
        USER_ID = "user_id", "user id"
        TAG = "tag"

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    value = models.CharField(max_length=300, blank=True, help_text="Cleared once done.")
    value_digest = models.CharField(max_length=64, help_text="SHA-256 of the value.")
    requested_by = models.CharField(max_length=200, help_text="As in the audit log's actor.")
    requested_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    session_count = models.IntegerField(default=0, help_text="Sessions deleted.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["project", "-requested_at"])]

    def __str__(self) -> str:
        return f"erase {self.kind} {self.value_digest[:8]}… ({self.status})"

    @staticmethod
    def digest_of(value: str) -> str:
        return hashlib.sha256(value.encode()).hexdigest()
