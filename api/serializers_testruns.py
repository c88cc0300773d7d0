"""Output shapes of the test-run API: runs, results, flaky tests and regressions. Rows come
annotated from analytics.queries or from the pure analytics modules."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.page_urls import PageUrlField
from ingest.models import TestResult, TestRun


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
    url = PageUrlField("test-run-detail", help_text="The run's dashboard page.")

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
    url = PageUrlField("test-result-detail", help_text="The result's dashboard page.")

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
    last_result_url = PageUrlField("test-result-detail", source="last_result_pk")


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
    first_failing_result_url = PageUrlField("test-result-detail", source="first_failing_result_pk")


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
