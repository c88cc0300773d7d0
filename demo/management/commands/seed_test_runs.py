"""seed_test_runs: two weeks of CI test runs of the red-team arena, sent through the native ingest
API with the SDK (like seed_demo, it never writes rows).

Unit and integration runs for every commit on main (three a day), a nightly scenario and chaos
run, a few runs on a feature branch. Things to find: a unit test that breaks at one commit four
days ago and stays broken (a regression), a scenario test that breaks three days ago when the
judge moves to a smaller model (a regression whose sessions show why: "compare with last pass"),
an integration test that fails about one run in four and passes when CI retries the same commit
(flaky), and a scenario test that got twice as slow six days ago. Scenario tests produce small
agent sessions linked to their results; they never exercise the attacker-social agent (nor its
attack step) or the code_exec tool, which the coverage page shows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from observatory_sdk import Client
from observatory_sdk import records as wire

UNIT = [
    f"tests/unit/test_tools.py::test_{name}"
    for name in (
        "search_tool_returns_hits",
        "search_tool_truncates_long_pages",
        "search_tool_escapes_queries",
        "web_fetch_follows_redirects",
        "web_fetch_refuses_private_ips",
        "code_exec_times_out",
        "code_exec_blocks_network",
        "calculator_divides",
        "tokenizer_counts_emoji",
        "price_table_covers_every_model",
    )
] + [
    f"tests/unit/test_prompts.py::test_{name}"
    for name in (
        "target_prompt_forbids_system_prompt_leaks",
        "judge_prompt_asks_for_a_score",
        "attacker_prompts_render",
        "templates_escape_user_text",
        "refusal_message_is_polite",
        "prompt_fits_the_context_window",
    )
]
INTEGRATION = [
    f"tests/integration/test_agents.py::test_{name}"
    for name in (
        "target_refuses_a_jailbreak",
        "target_answers_a_normal_question",
        "attacker_uses_a_tool",
        "planner_splits_the_task",
        "memory_survives_a_restart",
    )
] + [
    f"tests/integration/test_judge.py::test_{name}"
    for name in ("judge_scores_are_stable", "judge_names_the_breaching_attacker")
]
SCENARIO = [
    f"tests/scenario/test_arena.py::test_{name}"
    for name in (
        "red_team_round_ends_with_a_verdict",
        "three_rounds_without_a_breach",
        "injection_is_caught_by_the_judge",
        "session_costs_stay_under_a_dollar",
    )
]
CHAOS = [
    f"tests/chaos/test_faults.py::test_{name}"
    for name in (
        "search_timeout_is_retried",
        "rate_limited_llm_backs_off",
        "judge_crash_fails_the_round_cleanly",
    )
]
REGRESSION_TEST = "tests/unit/test_tools.py::test_search_tool_truncates_long_pages"
# Fails in every nightly scenario run since JUDGE_BROKEN_DAYS_AGO: its sessions' judge runs on
# JUDGE_MODELS[1], misses the injection, and the target's web fetch times out once first.
JUDGE_REGRESSION_TEST = "tests/scenario/test_arena.py::test_injection_is_caught_by_the_judge"
JUDGE_BROKEN_DAYS_AGO = 3
JUDGE_MODELS = ("gpt-4o", "gpt-4o-mini")
FLAKY_TEST = "tests/integration/test_judge.py::test_judge_scores_are_stable"
SLOW_TEST = "tests/scenario/test_arena.py::test_red_team_round_ends_with_a_verdict"
SKIPPED_TEST = "tests/unit/test_tools.py::test_code_exec_blocks_network"
XFAIL_TEST = "tests/unit/test_tools.py::test_tokenizer_counts_emoji"
FLAKY_RATE = 0.25
REGRESSION_DAYS_AGO = 4
SLOWDOWN_DAYS_AGO = 6
FEATURE_BRANCH = "feature/judge-v2"
# What the scenario tests' sessions exercise (seed_demo's arena uses more).
TEST_AGENTS = ("attacker-jailbreak", "attacker-injection", "target", "judge")
TEST_TOOLS = ("search", "web_fetch")
TESTS_BY_TIER = {"unit": UNIT, "integration": INTEGRATION, "scenario": SCENARIO, "chaos": CHAOS}
BASE_MS = {
    "unit": (5, 80),
    "integration": (300, 2500),
    "scenario": (9000, 14000),
    "chaos": (2000, 6000),
}


@dataclass(frozen=True)
class RunPlan:
    """One CI run: a tier's suite on one commit, with its results planned."""

    run_id: str
    tier: str
    commit: str
    branch: str
    started_at: datetime
    is_retry: bool = False
    is_broken: bool = False  # the regression (unit) or the judge's (scenario) is in this run
    is_flaky_failing: bool = False  # the flaky test fails this time
    results: tuple[dict[str, Any], ...] = ()


def _commit(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def plan_test_runs(rng: random.Random, *, days: int, now: datetime) -> list[RunPlan]:
    """Every run of the last `days` days in start order, each with its results planned."""
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    broken_since = now - timedelta(days=REGRESSION_DAYS_AGO)
    judge_broken_since = now - timedelta(days=JUDGE_BROKEN_DAYS_AGO)
    plans: list[RunPlan] = []
    for day in range(days + 1):
        midnight = start + timedelta(days=day)
        nightly = midnight + timedelta(hours=2)
        if plans and nightly < now:
            commit = plans[-1].commit
            broken = nightly >= judge_broken_since
            plans.append(
                RunPlan(wire.new_id(), "scenario", commit, "main", nightly, is_broken=broken)
            )
            plans.append(
                RunPlan(wire.new_id(), "chaos", commit, "main", nightly + timedelta(hours=1))
            )
        for hour in (9, 13, 17):
            at = midnight + timedelta(hours=hour, minutes=rng.randint(0, 50))
            if at < now:
                plans += _push_runs(rng, _commit(rng), "main", at, broken=at >= broken_since)
    for days_back in (3, 2, 1):
        at = now - timedelta(days=days_back, hours=rng.randint(1, 5))
        plans += _push_runs(rng, _commit(rng), FEATURE_BRANCH, at, broken=True)
    plans.sort(key=lambda plan: plan.started_at)
    return [replace(plan, results=tuple(_results(rng, plan, now=now))) for plan in plans]


def _push_runs(
    rng: random.Random, commit: str, branch: str, at: datetime, *, broken: bool
) -> list[RunPlan]:
    """Unit and integration runs of one push. A failed integration run is retried once, as CI
    does: that is how the flaky test both passes and fails on one commit."""
    flaky = rng.random() < FLAKY_RATE
    runs = [
        RunPlan(wire.new_id(), "unit", commit, branch, at, is_broken=broken),
        RunPlan(
            wire.new_id(),
            "integration",
            commit,
            branch,
            at + timedelta(minutes=4),
            is_flaky_failing=flaky,
        ),
    ]
    if flaky:
        retry_at = at + timedelta(minutes=15)
        fails_again = rng.random() < FLAKY_RATE
        runs.append(
            RunPlan(
                wire.new_id(),
                "integration",
                commit,
                branch,
                retry_at,
                is_retry=True,
                is_flaky_failing=fails_again,
            )
        )
    return runs


def _results(rng: random.Random, plan: RunPlan, *, now: datetime) -> list[dict[str, Any]]:
    slow = plan.started_at >= now - timedelta(days=SLOWDOWN_DAYS_AGO)
    clock = plan.started_at
    results = []
    for test_id in TESTS_BY_TIER[plan.tier]:
        low, high = BASE_MS[plan.tier]
        duration = rng.uniform(low, high) * (2.2 if slow and test_id == SLOW_TEST else 1.0)
        # Chaos tests error now and then, but not lately: the story's regression stays the one.
        noisy = plan.started_at < now - timedelta(days=2)
        outcome, message, trace = _outcome(rng, test_id, plan, noisy=noisy)
        results.append(
            {
                "test_id": test_id,
                "outcome": outcome,
                "duration_ms": round(duration, 1),
                "started_at": clock,
                "error_message": message,
                "error_trace": trace,
            }
        )
        clock += timedelta(milliseconds=duration)
    return results


def _outcome(
    rng: random.Random, test_id: str, plan: RunPlan, *, noisy: bool
) -> tuple[str, str, str]:
    if test_id == SKIPPED_TEST:
        return "skip", "needs a network sandbox", ""
    if test_id == XFAIL_TEST:
        return "xfail", "tokenizer miscounts emoji (#212)", ""
    if test_id == REGRESSION_TEST and plan.is_broken:
        message = "AssertionError: page of 12001 characters was not truncated to 8000"
        return "fail", message, _trace("test_tools.py", 88, "assert len(page) <= 8000", message)
    if test_id == JUDGE_REGRESSION_TEST and plan.is_broken:
        message = "AssertionError: the judge missed the injection (verdict: no breach)"
        return "fail", message, _trace("test_arena.py", 57, "assert verdict.breached", message)
    if test_id == FLAKY_TEST and plan.is_flaky_failing:
        message = "AssertionError: judge scores differ: 0.82 vs 0.64 (tolerance 0.1)"
        return "fail", message, _trace("test_judge.py", 41, "assert abs(a - b) < 0.1", message)
    if test_id in CHAOS and rng.random() < 0.04 and noisy:
        message = "TimeoutError: chaos proxy did not release the connection in 30 s"
        return "error", message, _trace("conftest.py", 17, "proxy.release()", message)
    return "pass", "", ""


def _trace(module: str, line: int, code: str, message: str) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "/ci/arena/tests/{module}", line {line}, in test\n'
        f"    {code}\n"
        f"{message}\n"
    )


def session_records(
    session_id: str, at: datetime, rng: random.Random, *, judge_missed: bool = False
) -> list[dict[str, Any]]:
    """A small arena session a scenario test produced: its agents, steps, tool calls and the
    judge's verdict. With `judge_missed`, the target's first web fetch times out and is retried,
    and the judge runs on the smaller model and misses the injection."""
    records = [
        wire.session_start_record(
            session_id, name="scenario test round", tags=["test"], started_at=at
        )
    ]
    clock = at
    for agent in TEST_AGENTS:
        records.append(wire.agent_created_record(session_id, agent, name=agent, at=clock))
    steps = [(f"{agent}.attack", agent) for agent in TEST_AGENTS if agent.startswith("attacker")]
    for index, (step, agent) in enumerate([*steps, ("target.respond", "target")]):
        clock += timedelta(milliseconds=rng.randint(300, 1500))
        action = wire.event_record(
            session_id, "action", step, agent_id=agent, started_at=clock, status="ok"
        )
        # Each step calls the same tool in every session, so two runs' steps line up.
        tool = TEST_TOOLS[index % len(TEST_TOOLS)]
        records.append(action)
        if judge_missed and agent == "target":
            records.append(_timed_out_fetch(session_id, str(action["span_id"]), clock))
            clock += timedelta(seconds=30)
        records += [
            wire.event_record(
                session_id,
                "tool",
                tool,
                agent_id=agent,
                parent_span_id=str(action["span_id"]),
                started_at=clock,
                ended_at=clock + timedelta(milliseconds=400),
                status="ok",
            ),
        ]
    clock += timedelta(seconds=2)
    score = wire.event_record(
        session_id, "action", "judge.score", agent_id="judge", started_at=clock
    )
    records += [score, _verdict(session_id, str(score["span_id"]), clock, missed=judge_missed)]
    end = clock + timedelta(seconds=3)
    records.append(wire.session_end_record(session_id, end_state="success", ended_at=end))
    return records


def _timed_out_fetch(session_id: str, parent_id: str, at: datetime) -> dict[str, Any]:
    return wire.event_record(
        session_id,
        "tool",
        "web_fetch",
        agent_id="target",
        parent_span_id=parent_id,
        started_at=at,
        ended_at=at + timedelta(seconds=30),
        status="error",
        params={"url": "https://arena.example/rules"},
        error_type="TimeoutError",
        error_message="web_fetch timed out after 30 s",
    )


def _verdict(session_id: str, parent_id: str, at: datetime, *, missed: bool) -> dict[str, Any]:
    """The judge's LLM call: it names the breaching attacker, or (missed) finds none."""
    verdict = (
        "No breach: the target stayed within its instructions."
        if missed
        else "BREACH by attacker-injection: the target repeated its system prompt."
    )
    return wire.event_record(
        session_id,
        "llm",
        "judge.verdict",
        agent_id="judge",
        parent_span_id=parent_id,
        started_at=at,
        ended_at=at + timedelta(milliseconds=1400 if missed else 2600),
        status="ok",
        model=JUDGE_MODELS[1] if missed else JUDGE_MODELS[0],
        prompt=[
            {"role": "system", "content": "You judge a red-team round. Name any breach."},
            {"role": "user", "content": "Transcript: attacker-injection asked for the rules…"},
        ],
        completion=verdict,
        prompt_tokens=820,
        completion_tokens=24 if missed else 41,
    )


def run_records(plan: RunPlan, rng: random.Random) -> list[dict[str, Any]]:
    """The run's test_run.start, its results (scenario ones with a linked session) and end."""
    records = [
        wire.test_run_start_record(
            plan.run_id,
            tier=plan.tier,
            suite="arena",
            commit=plan.commit,
            branch=plan.branch,
            environment="ci",
            source="demo",
            started_at=plan.started_at,
            metadata={"retry": plan.is_retry},
        )
    ]
    end = plan.started_at
    for result in plan.results:
        sessions: list[str] = []
        if plan.tier == "scenario":
            session_id = wire.new_id()
            sessions.append(session_id)
            missed = result["test_id"] == JUDGE_REGRESSION_TEST and result["outcome"] == "fail"
            records += session_records(session_id, result["started_at"], rng, judge_missed=missed)
        records.append(
            wire.test_result_record(
                plan.run_id,
                result["test_id"],
                result["outcome"],
                name=result["test_id"].rsplit("::", 1)[-1],
                duration_ms=result["duration_ms"],
                started_at=result["started_at"],
                error_message=result["error_message"],
                error_trace=result["error_trace"],
                session_ids=sessions,
            )
        )
        end = result["started_at"] + timedelta(milliseconds=result["duration_ms"])
    records.append(wire.test_run_end_record(plan.run_id, ended_at=end))
    return records


class Command(BaseCommand):
    help = "Send two weeks of demo test runs (with a regression and a flaky test) to a server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL.")
        parser.add_argument("--api-key", required=True, help="A project API key.")
        parser.add_argument("--days", type=int, default=14, help="Runs over the last N days.")
        parser.add_argument("--seed", type=int, default=5, help="Same seed, same story.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        rng = random.Random(options["seed"])
        plans = plan_test_runs(rng, days=options["days"], now=datetime.now(UTC))
        client = Client(options["api_key"], options["url"], batch_size=1000, flush_interval=0.2)
        record_count = 0
        try:
            for index, plan in enumerate(plans):
                for record in run_records(plan, rng):
                    client.record(record)
                    record_count += 1
                if index == 0 or index % 50 == 49:
                    client.flush()  # stop early on a wrong URL or key
                if client.stats.failed_batches:
                    raise CommandError(f"Could not send: {client.stats.last_error}")
        finally:
            client.close(timeout=120)
        stats = client.stats
        self.stdout.write(
            f"Seeded {len(plans)} test runs: {record_count} records sent ({stats.sent} accepted), "
            f"{stats.rejected} rejected, {stats.failed_batches} failed batches."
        )
        if stats.rejected or stats.failed_batches or stats.dropped:
            raise CommandError(f"The server did not take everything. {stats.last_error}".strip())
