"""Derived, recomputable tables: rollups, anomaly flags, session flags, error clusters, reports,
and the user-edited alert rules with their history.

Everything here except AlertRule can be rebuilt from the telemetry tables in ingest
(`manage.py recompute_analytics`). Writes go through analytics/store.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from ingest.models import Project, Session


class RollupFields(models.Model):
    """What a rollup row holds, for Rollup (by agent id) and NamedRollup (by agent name)."""

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    # No index of its own: the unique constraint starts with project (bench/README.md, issue 15).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket_start = models.DateTimeField()
    agent = models.CharField(max_length=128, blank=True, help_text="Span agent id.")
    model = models.CharField(max_length=200, blank=True)
    tool = models.CharField(max_length=300, blank=True, help_text="Span name of tool spans.")
    kind = models.CharField(max_length=10, help_text="action, llm, tool, error or session.")
    count = models.IntegerField(default=0)
    error_count = models.IntegerField(default=0)
    rate_limit_count = models.IntegerField(
        default=0, help_text="Errors that name provider throttling (HTTP 429, rate limit)."
    )
    timed_count = models.IntegerField(default=0, help_text="Calls with a duration.")
    latency_sum_ms = models.FloatField(default=0)
    latency_p50_ms = models.FloatField(null=True, blank=True)
    latency_p95_ms = models.FloatField(null=True, blank=True)
    latency_p99_ms = models.FloatField(null=True, blank=True)
    latency_histogram = models.JSONField(
        default=dict, blank=True, help_text="Sparse log-scale histogram {bin: calls}."
    )
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    token_call_count = models.IntegerField(default=0, help_text="Calls that reported tokens.")
    cost = models.FloatField(default=0)
    step_count = models.IntegerField(default=0, help_text="Session rows: events in the sessions.")
    message_count = models.IntegerField(default=0, help_text="Session rows: chat messages.")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket_start:%Y-%m-%d %H:%M} {self.kind} x{self.count}"


class Rollup(RollupFields):
    """Spans (or sessions, kind "session") of one hour or day for one agent, model, tool and kind.

    Replaced bucket by bucket by the refresh task, so a recompute is idempotent."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "granularity", "bucket_start", "agent", "model", "tool", "kind"],
                name="rollup_unique",
            ),
        ]
        indexes = [models.Index(fields=["project", "granularity", "bucket_start"])]


class NamedRollup(RollupFields):
    """Rollup rows with agents folded by name (`agent` is the agent's name, or its id when it
    has none): what the overview, trends and forecasts read. Rollup rows grow with sessions
    (OTLP and agentops give each session's agent its own id); these grow with names.

    Replaced with the Rollup rows of the same day by the refresh task."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "granularity", "bucket_start", "agent", "model", "tool", "kind"],
                name="named_rollup_unique",
            ),
        ]
        indexes = [
            models.Index(
                fields=["project", "granularity", "bucket_start"], name="named_rollup_bucket"
            )
        ]


class AgentEdgeRollup(models.Model):
    """Messages of one hour (by their start) from one sender to one receiver: counts and a sparse
    log-scale delivery-time histogram (analytics.trends bins), so the agent graph over any range
    of whole hours merges these rows instead of reading every message.

    Replaced hour by hour by the refresh task, so a recompute is idempotent."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour the messages started in.")
    sender = models.CharField(max_length=128, blank=True, help_text="Sending agent id or name.")
    receiver = models.CharField(max_length=128, blank=True, help_text="Receiving agent id or name.")
    message_count = models.IntegerField(default=0)
    failed_count = models.IntegerField(
        default=0, help_text="Messages that failed, were dead-lettered or expired."
    )
    dead_lettered_count = models.IntegerField(default=0)
    delivery_histogram = models.JSONField(
        default=dict, blank=True, help_text="Sparse log-scale histogram {bin: messages}."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "hour", "sender", "receiver"], name="agent_edge_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "hour"])]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} {self.sender}→{self.receiver} x{self.message_count}"


class AgentNameRollup(models.Model):
    """One hour of one agent name: the sessions started in it that had an instance of that name,
    their latest end, and the messages the name (or one of its ids) sent in it. The agents page
    sums these over the whole hours of its range instead of reading every instance (agentops and
    OTLP make one per session) and every message.

    Replaced day by day by the refresh task, so a recompute is idempotent."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="Start of the UTC hour the sessions or messages started.")
    name = models.CharField(max_length=128, help_text="Agent name, or the id of a nameless one.")
    session_count = models.IntegerField(default=0)
    last_seen = models.DateTimeField(
        null=True, blank=True, help_text="Latest end (or start) of those sessions."
    )
    sent_count = models.IntegerField(default=0, help_text="Messages sent, by id or name.")
    failed_count = models.IntegerField(
        default=0, help_text="Of those, failed, dead-lettered or expired."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "hour", "name"], name="agent_name_rollup_unique"
            ),
        ]
        indexes = [models.Index(fields=["project", "hour"], name="agent_name_rollup_hour")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:%M} {self.name} x{self.session_count}"


class PendingRefresh(models.Model):
    """A project whose derived data is behind its telemetry since `dirty_from`.

    Ingest marks it (through the summary task); the debounced refresh task claims and clears it."""

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    dirty_from = models.DateTimeField(null=True, blank=True)
    is_scheduled = models.BooleanField(
        default=False, help_text="A refresh task is queued; more data only widens dirty_from."
    )
    updated_at = models.DateTimeField(auto_now=True)
    unjudged_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Hours older than the live lookback whose data changed and that no refresh has "
        "judged yet (an import, a late exporter): later refreshes judge them a bounded chunk "
        "at a time.",
    )
    unjudged_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.project_id} dirty from {self.dirty_from}"


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


# --- Test-run analysis (issue 5): recomputed by analytics.tasks.refresh_test_analysis_task -------


class TestAnalysisState(models.Model):
    """Whether a project's stored test analysis is queued for a refresh, and when it was last
    computed (null: never, so pages compute on the fly and say so)."""

    __test__ = False  # pytest: not a test class

    project = models.OneToOneField(Project, on_delete=models.CASCADE, related_name="+")
    is_scheduled = models.BooleanField(
        default=False, help_text="A refresh task is queued; more results ride along with it."
    )
    scheduled_at = models.DateTimeField(null=True, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    tested_session_counts = models.JSONField(
        default=dict,
        blank=True,
        help_text="Sessions linked to test results, by range of days (as a string), for coverage.",
    )

    def __str__(self) -> str:
        return f"test analysis of {self.project_id} at {self.computed_at}"


class StoredFlakyTest(models.Model):
    """analytics.flakiness.flakiness_scores of one test over the project's newest `window_runs`
    runs (no tier, suite or branch filter)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    window_runs = models.IntegerField(help_text="The newest N runs the scores are computed over.")
    test_id = models.CharField(max_length=500)
    name = models.CharField(max_length=1000, blank=True)
    tier = models.CharField(max_length=50, blank=True)
    suite = models.CharField(max_length=200, blank=True)
    results = models.IntegerField(default=0)
    failures = models.IntegerField(default=0)
    flips = models.IntegerField(default=0)
    transient_failures = models.IntegerField(default=0)
    flip_rate = models.FloatField(default=0)
    commits_rerun = models.IntegerField(default=0)
    commits_mixed = models.IntegerField(default=0)
    same_commit_rate = models.FloatField(default=0)
    flakiness = models.FloatField(default=0)
    reliability = models.FloatField(default=0)
    is_flaky = models.BooleanField(default=False)
    last_outcome = models.CharField(max_length=10, blank=True)
    last_run_pk = models.BigIntegerField(null=True, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_result_pk = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "window_runs", "test_id"], name="stored_flaky_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test_id} flakiness {self.flakiness:.2f}"


class StoredTestRegression(models.Model):
    """analytics.regressions.outcome_regressions of one (branch, test) over the newest
    `window_runs` runs: failing since `first_failing_*`, last passing at `last_passing_*`."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    window_runs = models.IntegerField()
    branch = models.CharField(max_length=200, blank=True)
    test_id = models.CharField(max_length=500)
    name = models.CharField(max_length=1000, blank=True)
    tier = models.CharField(max_length=50, blank=True)
    suite = models.CharField(max_length=200, blank=True)
    failing_runs = models.IntegerField(default=0)
    first_failing_run_pk = models.BigIntegerField(null=True, blank=True)
    first_failing_commit = models.CharField(max_length=64, blank=True)
    first_failing_at = models.DateTimeField(null=True, blank=True)
    first_failing_result_pk = models.BigIntegerField(null=True, blank=True)
    last_passing_run_pk = models.BigIntegerField(null=True, blank=True)
    last_passing_commit = models.CharField(max_length=64, blank=True)
    last_passing_at = models.DateTimeField(null=True, blank=True)
    latest_run_pk = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "window_runs", "branch", "test_id"],
                name="stored_regression_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test_id} failing on {self.branch} since {self.first_failing_commit}"


class StoredDurationRegression(models.Model):
    """analytics.regressions.duration_regressions of one test over the newest `window_runs` runs."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    window_runs = models.IntegerField()
    test_id = models.CharField(max_length=500)
    name = models.CharField(max_length=1000, blank=True)
    tier = models.CharField(max_length=50, blank=True)
    suite = models.CharField(max_length=200, blank=True)
    baseline_ms = models.FloatField(default=0)
    recent_ms = models.FloatField(default=0)
    ratio = models.FloatField(default=0)
    slower_since_run_pk = models.BigIntegerField(null=True, blank=True)
    slower_since_commit = models.CharField(max_length=64, blank=True)
    slower_since_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "window_runs", "test_id"], name="stored_duration_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.test_id} x{self.ratio:.1f}"


class TestPassRateDay(models.Model):
    """Decisive results of one UTC day's runs for one tier and suite (pass_rate_trend's counts,
    kept summable so pages can regroup them by tier)."""

    __test__ = False  # pytest: not a test class

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    tier = models.CharField(max_length=50, blank=True)
    suite = models.CharField(max_length=200, blank=True)
    passed = models.IntegerField(default=0)
    failed = models.IntegerField(default=0, help_text="Fail and error results.")
    total = models.IntegerField(default=0)
    runs = models.IntegerField(default=0, help_text="Distinct runs with results of this tier.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "tier", "suite"], name="test_pass_rate_day_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.tier}/{self.suite} {self.passed}/{self.total}"


class TestDurationDay(models.Model):
    """analytics.testruns.duration_trend of one UTC day's runs and tier (every suite and branch):
    the median run's summed test time and the median test duration."""

    __test__ = False  # pytest: not a test class

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    tier = models.CharField(max_length=50, blank=True)
    run_ms = models.FloatField(default=0, help_text="Median over runs of a run's test time.")
    test_ms = models.FloatField(default=0, help_text="Median over runs of the median test.")
    runs = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "tier"], name="test_duration_day_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.tier} {self.run_ms:.0f} ms"


class TestTierReliability(models.Model):
    """How many tests of a tier ran in the last `days` days and their mean reliability."""

    __test__ = False  # pytest: not a test class

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    days = models.IntegerField(help_text="The range of days (up to the refresh) it covers.")
    tier = models.CharField(max_length=50, blank=True)
    tests = models.IntegerField(default=0)
    reliability = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "days", "tier"], name="test_tier_reliability_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier} over {self.days} days: {self.reliability:.2f}"


class TestCoverageItem(models.Model):
    """analytics.coverage.coverage_table row of one agent, tool or workflow step over the last
    `days` days: how often production and the test-linked sessions used it."""

    __test__ = False  # pytest: not a test class

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    days = models.IntegerField(help_text="The range of days (up to the refresh) it covers.")
    kind = models.CharField(max_length=10)
    name = models.CharField(max_length=300)
    production_count = models.IntegerField(default=0)
    test_count = models.IntegerField(default=0)
    is_covered = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "days", "kind", "name"], name="test_coverage_item_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} over {self.days} days"


class SearchEntry(models.Model):
    """One span, transcript line or message with text, as the full-text search index knows it
    (analytics/search.py keeps and reads it). The text itself is not copied here: PostgreSQL
    adds a `document` tsvector column with a GIN index, SQLite an FTS5 table keyed by this id
    (migration 0006), both of the strings this entry was the first of its session to say
    (analytics/search_text.py), and snippets are cut from the source rows."""

    class Kind(models.IntegerChoices):
        SPAN = 1
        LINE = 2
        MESSAGE = 3

    # Indexed by the Meta indexes that start with them, not by a copy each (issue 15).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+", db_index=False)
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="+", db_index=False)
    kind = models.SmallIntegerField(choices=Kind.choices)
    target_id = models.BigIntegerField(help_text="The span, transcript line or message id.")
    at = models.DateTimeField()
    signature = models.CharField(
        max_length=100,
        help_text="What changes when the text does (PostgreSQL: the row version of the text's "
        "row; SQLite: sizes and a prefix): unchanged text is not read again.",
    )
    strings = models.BinaryField(
        default=b"", help_text="Digests of every distinct string of its text (8 bytes each)."
    )
    said = models.BinaryField(
        default=b"",
        help_text="Digests of the strings it indexes: those no entry of its session said before.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "target_id"], name="search_entry_unique"),
        ]
        indexes = [
            models.Index(fields=["session"], name="search_entry_session"),
            models.Index(fields=["project", "at"], name="search_entry_project_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.target_id}"
