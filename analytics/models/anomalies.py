"""Anomaly flags and the incidents that group them, detector flags and error clusters."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ingest.models import Project, Session


class Incident(models.Model):
    """The anomaly flags of one cause grouped into one (analytics/incidents.py): its window,
    its lead flag's numbers, its top dimension. Open while its flags keep coming, closed once
    quiet; alert rules of kind anomaly fire once per incident."""

    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    window_start = models.DateTimeField(db_index=True)
    window_end = models.DateTimeField()
    subject_type = models.CharField(max_length=10, help_text="The lead flag's subject type.")
    subject = models.CharField(max_length=300, blank=True)
    metric = models.CharField(max_length=40, help_text="The lead flag's metric.")
    observed = models.FloatField()
    baseline = models.FloatField()
    score = models.FloatField(help_text="The highest score of its flags.")
    top_dimension = models.CharField(
        max_length=400,
        blank=True,
        help_text="The subject most of its flags name, e.g. tool=search.",
    )
    flag_count = models.IntegerField(default=0)
    example_session_ids = models.JSONField(default=list, blank=True, help_text="Session pks.")
    explanation = models.TextField()
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    opened_at = models.DateTimeField(help_text="When a refresh first found it.")
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["project", "opened_at"])]

    def __str__(self) -> str:
        return self.explanation


class Anomaly(models.Model):
    """A metric of one agent, tool, model (or the project) far above its robust baseline."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    subject_type = models.CharField(max_length=10, help_text="agent, tool, model or project.")
    subject = models.CharField(max_length=300, blank=True)
    metric = models.CharField(max_length=40)
    window_start = models.DateTimeField(db_index=True)
    window_end = models.DateTimeField()
    observed = models.FloatField()
    baseline = models.FloatField()
    score = models.FloatField(help_text="Robust z-score: (observed - median) / scaled MAD.")
    sample_count = models.IntegerField(default=0)
    is_seasonal = models.BooleanField(default=False, help_text="Hour-of-week baseline.")
    top_dimension = models.CharField(max_length=400, blank=True, help_text="e.g. model=gpt-4o")
    top_share = models.FloatField(null=True, blank=True)
    example_session_ids = models.JSONField(default=list, blank=True, help_text="Session pks.")
    explanation = models.TextField()
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="anomalies"
    )
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    detected_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "subject_type", "subject", "metric", "window_start"],
                name="anomaly_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.explanation


class SessionFlag(models.Model):
    """A failure pattern a deterministic detector found in one session (loop, ping-pong…)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="flags")
    detector = models.CharField(max_length=30)
    detail = models.TextField(help_text="What was seen, in one sentence.")
    evidence_count = models.IntegerField(default=0)
    detected_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "detector"], name="session_flag_unique"),
        ]
        indexes = [models.Index(fields=["project", "detector"])]

    def __str__(self) -> str:
        return f"{self.detector}: {self.detail}"


class ErrorCluster(models.Model):
    """Error messages that are the same once numbers, ids, paths and quoted values are masked."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=40)
    error_type = models.CharField(max_length=200, blank=True)
    pattern = models.TextField(help_text="The normalised message.")
    example_message = models.TextField()
    example_session = models.ForeignKey(
        Session, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    count = models.IntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField(db_index=True)
    agents = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "fingerprint"], name="error_cluster_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.error_type}: {self.pattern[:80]} x{self.count}"


class ErrorClusterDay(models.Model):
    """A cluster's errors on one day; the cluster's totals are the sum of its days."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    fingerprint = models.CharField(max_length=40)
    day = models.DateField()
    count = models.IntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    agents = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "fingerprint", "day"], name="error_cluster_day_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "day"])]

    def __str__(self) -> str:
        return f"{self.fingerprint[:8]} on {self.day}: {self.count}"
