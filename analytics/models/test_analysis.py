"""The stored test-run analysis, recomputed by analytics.tasks.refresh_test_analysis_task."""

from __future__ import annotations

from django.db import models

from ingest.models import Project


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
