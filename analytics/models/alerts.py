"""The user-edited alert rules and report schedules, alert events and stored reports."""

from __future__ import annotations

from django.db import models

from ingest.models import Project


class AlertRule(models.Model):
    """A condition on a metric (or on new anomalies) that notifies a webhook or email."""

    class Kind(models.TextChoices):
        METRIC = "metric"
        ANOMALY = "anomaly"

    class State(models.TextChoices):
        OK = "ok"
        ALERT = "alert"
        NO_DATA = "no_data"

    class Channel(models.TextChoices):
        WEBHOOK = "webhook"
        SLACK = "slack", "Slack-compatible webhook"
        EMAIL = "email"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.METRIC)
    metric = models.CharField(
        max_length=40, help_text="Metric rules: a metric; anomaly rules: an anomaly metric or ''."
    )
    agent = models.CharField(max_length=128, blank=True, help_text="Scope: only this agent.")
    model = models.CharField(max_length=200, blank=True, help_text="Scope: only this model.")
    tool = models.CharField(max_length=300, blank=True, help_text="Scope: only this tool.")
    score_name = models.CharField(
        max_length=200, blank=True, help_text="Score metrics: the name of the scores judged."
    )
    window_minutes = models.IntegerField(default=60)
    comparator = models.CharField(max_length=2, default=">")
    threshold = models.FloatField(default=0)
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.WEBHOOK)
    target = models.CharField(max_length=1000, help_text="Webhook URL or email address(es).")
    secret = models.CharField(
        max_length=200, blank=True, help_text="Webhook HMAC-SHA256 signing secret."
    )
    renotify_minutes = models.IntegerField(
        default=60, help_text="Notify again while still alerting after this long; 0 never."
    )
    is_enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OK)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    last_value = models.FloatField(null=True, blank=True)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class AlertEvent(models.Model):
    """One state change, re-notification or test notification of a rule, with its delivery."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="events")
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    at = models.DateTimeField(db_index=True)
    state = models.CharField(max_length=10)
    previous_state = models.CharField(max_length=10, blank=True)
    value = models.FloatField(null=True, blank=True)
    message = models.TextField()
    is_test = models.BooleanField(default=False)
    is_delivered = models.BooleanField(default=False)
    delivery_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.rule_id} {self.state} at {self.at}"


class Report(models.Model):
    """A daily or weekly performance report of a project: CSV plus an HTML summary."""

    class Period(models.TextChoices):
        DAILY = "daily"
        WEEKLY = "weekly"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    period = models.CharField(max_length=10, choices=Period.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    csv_text = models.TextField()
    html_text = models.TextField()
    created_at = models.DateTimeField(auto_now=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "period", "period_start"], name="report_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.period} report from {self.period_start:%Y-%m-%d}"


class ReportSchedule(models.Model):
    """Which reports beat makes for a project, and who gets them by email."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    is_daily = models.BooleanField(default=True)
    is_weekly = models.BooleanField(default=True)
    email_to = models.CharField(
        max_length=1000, blank=True, help_text="Comma-separated addresses; empty: no email."
    )

    def __str__(self) -> str:
        return f"reports of {self.project_id}"
