"""seed_test_runs against the stand-in ingest server (no database), and its story checked with the
analysis functions: they must find the planted regression, flaky test and slowdown."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from io import StringIO
from typing import Any

import pandas as pd
from django.core.management import call_command

from analytics.flakiness import flakiness_scores
from analytics.regressions import duration_regressions, outcome_regressions
from demo.management.commands.seed_test_runs import (
    FLAKY_TEST,
    JUDGE_MODELS,
    JUDGE_REGRESSION_TEST,
    REGRESSION_TEST,
    SLOW_TEST,
    plan_test_runs,
    session_records,
)
from ingest.formats.native import parse_records
from tests.sdk.conftest import FakeIngest

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def test_it_sends_runs_results_and_linked_sessions_that_all_parse(fake_ingest: FakeIngest) -> None:
    out = StringIO()
    call_command("seed_test_runs", url=fake_ingest.url, api_key="obs_test", days=3, stdout=out)

    records = fake_ingest.records
    types = Counter(record["type"] for record in records)
    assert types["test_run.start"] == types["test_run.end"] > 10
    assert types["test_result"] > 100
    assert types["session.start"] > 0
    linked = {
        sid for r in records if r["type"] == "test_result" for sid in r.get("session_ids", [])
    }
    assert linked == {r["session_id"] for r in records if r["type"] == "session.start"}
    assert parse_records(records, max_string_chars=1_000_000).errors == []
    assert "0 rejected, 0 failed batches" in out.getvalue()


def planned_results() -> pd.DataFrame:
    plans = plan_test_runs(random.Random(5), days=14, now=NOW)
    return pd.DataFrame(
        [
            {
                "result_pk": index * 1000 + i,
                "run_pk": index,
                "run_started_at": plan.started_at,
                "commit": plan.commit,
                "branch": plan.branch,
                "suite": "arena",
                "tier": plan.tier,
                "test_id": result["test_id"],
                "name": result["test_id"],
                "outcome": result["outcome"],
                "duration_ms": result["duration_ms"],
            }
            for index, plan in enumerate(plans)
            for i, result in enumerate(plan.results)
        ]
    )


def test_the_story_has_two_regressions_on_main_one_flaky_test_and_one_slowdown() -> None:
    results = planned_results()

    regressions = outcome_regressions(results)
    scores = flakiness_scores(results)
    slower = duration_regressions(results)

    assert sorted(zip(regressions["branch"], regressions["test_id"], strict=True)) == [
        ("main", JUDGE_REGRESSION_TEST),
        ("main", REGRESSION_TEST),
    ]
    assert list(scores[scores["is_flaky"].astype(bool)]["test_id"]) == [FLAKY_TEST]
    assert list(slower["test_id"]) == [SLOW_TEST]
    assert results["run_started_at"].min() >= NOW - pd.Timedelta(days=15)
    assert results["run_started_at"].max() < NOW


def test_a_missed_verdicts_session_retries_a_fetch_and_judges_on_the_smaller_model() -> None:
    """What "compare with last pass" shows on the demo data: the same steps, one inserted
    timed-out fetch, and the judge's verdict on another model."""
    passed = session_records("s-pass", NOW, random.Random(1))
    missed = session_records("s-miss", NOW, random.Random(1), judge_missed=True)

    def steps(records: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [
            (r["kind"], r["name"], r.get("status", "")) for r in records if r["type"] == "event"
        ]

    inserted = [step for step in steps(missed) if step not in steps(passed)]
    assert inserted == [("tool", "web_fetch", "error")]
    verdicts = {
        r["session_id"]: r["model"] for r in passed + missed if r.get("name") == "judge.verdict"
    }
    assert verdicts == {"s-pass": JUDGE_MODELS[0], "s-miss": JUDGE_MODELS[1]}
