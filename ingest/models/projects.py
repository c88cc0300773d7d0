"""Projects and who may use them: API keys, memberships, price overrides, the audit log and
erasure requests."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.utils import timezone


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
    (analytics/deletion.py). The value itself is cleared once the sessions are gone, and only its
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
