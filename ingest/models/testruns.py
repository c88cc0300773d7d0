"""Test runs and their results (native records, JUnit XML, the pytest plugin)."""

from __future__ import annotations

from django.db import models

from ingest.models.projects import Project


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

    # No foreign-key indexes: the (project, test_id) index starts with project,
    # test_result_unique with run.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, db_index=False)
    run = models.ForeignKey(
        TestRun, on_delete=models.CASCADE, related_name="results", db_index=False
    )
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
