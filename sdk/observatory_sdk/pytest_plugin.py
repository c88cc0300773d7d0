"""pytest plugin: report a test run and each test's result to Agent Observatory.

Installed with the client (entry point `observatory` in group `pytest11`) and OFF until enabled
with `--observatory` or `OBSERVATORY_TEST_REPORT=1`. It always registers the tier markers
(`unit`, `integration`, `scenario`, `chaos`) so suites that use them pass `--strict-markers`.

A test's tier comes from its marker, else from the first matching `observatory_tier_paths` line
(`path/prefix/ = tier`, relative to the rootdir), else from `--observatory-tier`. Sessions the
test starts with Client.start_session(), ids given to `observatory_sdk.testing.link_session()` and
`record_property("session_id", ...)` are linked to its result; other numeric properties
(`record_property("tokens", 812)`) become its metrics. Scores of the agent's answer come from
`observatory_sdk.testing.score("judge", 0.8)` and `record_property("score.judge", 0.8)`.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from observatory_sdk import records, testing
from observatory_sdk.client import DEFAULT_BASE_URL, Client

TIERS = ("unit", "integration", "scenario", "chaos")
ENABLE_ENV = "OBSERVATORY_TEST_REPORT"
SESSION_PROPERTIES = ("session_id", "observatory.session_id")
SCORE_PROPERTY_PREFIX = "score."
COMMIT_ENVS = ("OBSERVATORY_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT")
BRANCH_ENVS = (
    "OBSERVATORY_BRANCH",
    "GITHUB_HEAD_REF",
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",
    "GIT_BRANCH",
)
MAX_TRACE_CHARS = 50_000


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("observatory", "Agent Observatory test reporting")
    group.addoption(
        "--observatory",
        action="store_true",
        help=f"Report this run to Agent Observatory (or set {ENABLE_ENV}=1).",
    )
    group.addoption("--observatory-url", help="Server URL (env OBSERVATORY_URL).")
    group.addoption("--observatory-api-key", help="Project API key (env OBSERVATORY_API_KEY).")
    group.addoption(
        "--observatory-tier",
        help="Tier of tests without a tier marker or path mapping (env OBSERVATORY_TEST_TIER).",
    )
    group.addoption("--observatory-suite", help="Suite name (default: the rootdir's name).")
    group.addoption("--observatory-run-id", help="Run id (default: a new random id).")
    parser.addini(
        "observatory_tier_paths",
        type="linelist",
        help="Tier by path: lines of `path/prefix/ = tier`, relative to the rootdir.",
    )


def pytest_configure(config: pytest.Config) -> None:
    for tier in TIERS:
        config.addinivalue_line("markers", f"{tier}: Agent Observatory test tier '{tier}'")
    if not _is_enabled(config) or hasattr(config, "workerinput"):
        return  # pytest-xdist workers: reporting from several processes is not supported yet
    api_key = config.getoption("observatory_api_key") or os.environ.get("OBSERVATORY_API_KEY")
    if not api_key:
        raise pytest.UsageError(
            "Observatory reporting needs an API key: --observatory-api-key or OBSERVATORY_API_KEY"
        )
    url = (
        config.getoption("observatory_url") or os.environ.get("OBSERVATORY_URL") or DEFAULT_BASE_URL
    )
    config.pluginmanager.register(Reporter(config, url, api_key), "observatory-reporter")


def _is_enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("observatory")) or os.environ.get(ENABLE_ENV, "") in (
        "1",
        "true",
    )


@dataclass
class _Test:
    """What the reports of one test's setup, call and teardown added up to."""

    name: str
    tier: str
    outcome: str = "pass"
    duration_ms: float = 0.0
    message: str = ""
    trace: str = ""
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    properties: list[tuple[str, Any]] = field(default_factory=list)


class Reporter:
    """Sends test_run.start, one test_result per test, and test_run.end through a Client."""

    def __init__(self, config: pytest.Config, url: str, api_key: str) -> None:
        self.config = config
        self.url = url.rstrip("/")
        self.client = Client(api_key, url, flush_interval=1.0, max_retries=3, backoff_max=5)
        self.run_id = config.getoption("observatory_run_id") or records.new_id()
        self.default_tier = (
            config.getoption("observatory_tier") or os.environ.get("OBSERVATORY_TEST_TIER") or ""
        ).lower()
        self.tier_paths = _tier_paths(config.getini("observatory_tier_paths"))
        self.tiers: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.tests: dict[str, _Test] = {}
        self.result_count = 0

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        root = self.config.rootpath
        self.client.record(
            records.test_run_start_record(
                self.run_id,
                tier=self.config.getoption("observatory_tier") or "",
                suite=self.config.getoption("observatory_suite") or root.name,
                commit=_from_env(COMMIT_ENVS) or _git(root, "rev-parse", "HEAD"),
                branch=_from_env(BRANCH_ENVS) or _git(root, "rev-parse", "--abbrev-ref", "HEAD"),
                environment=os.environ.get("OBSERVATORY_ENVIRONMENT", ""),
                source="pytest",
                metadata={"python": platform.python_version(), "pytest": pytest.__version__},
            )
        )

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.tiers[item.nodeid] = self._tier_of(item)
            self.names[item.nodeid] = item.name

    def _tier_of(self, item: pytest.Item) -> str:
        for tier in TIERS:
            if item.get_closest_marker(tier) is not None:
                return tier
        relative = _relative(item.path, self.config.rootpath)
        for prefix, tier in self.tier_paths:
            if relative.startswith(prefix):
                return tier
        return self.default_tier

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.tests[nodeid] = _Test(
            name=self.names.get(nodeid, nodeid), tier=self.tiers.get(nodeid, self.default_tier)
        )
        testing.begin_test()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        test = self.tests.get(report.nodeid)
        if test is None:
            return
        test.duration_ms += report.duration * 1000
        test.properties = list(report.user_properties)
        outcome = _phase_outcome(report)
        if outcome is not None and _RANK[outcome] > _RANK[test.outcome]:
            test.outcome = outcome
            test.message = _message(report)
            test.trace = report.longreprtext[:MAX_TRACE_CHARS] if report.failed else ""

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        linked = testing.end_test()
        scores = testing.take_scores()
        test = self.tests.pop(nodeid, None)
        if test is None:
            return
        sessions = [str(v) for k, v in test.properties if k in SESSION_PROPERTIES]
        self.client.record(
            records.test_result_record(
                self.run_id,
                nodeid,
                test.outcome,
                name=test.name,
                tier=test.tier,
                duration_ms=round(test.duration_ms, 3),
                started_at=test.started_at,
                error_message=test.message,
                error_trace=test.trace,
                metrics=dict(_numeric(test.properties)),
                session_ids=list(dict.fromkeys([*linked, *sessions])),
                scores=[*scores, *_property_scores(test.properties)],
            )
        )
        self.result_count += 1

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.client.record(
            records.test_run_end_record(self.run_id, metadata={"exit_status": int(exitstatus)})
        )
        self.client.close(timeout=30)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        stats = self.client.stats
        line = (
            f"Observatory: {self.result_count} results of run {self.run_id} sent to {self.url} "
            f"({stats.sent} records accepted, {stats.rejected} rejected)"
        )
        if stats.failed_batches or stats.dropped or stats.rejected:
            line += f"; NOT all delivered: {stats.last_error}"
        terminalreporter.write_line(line)


# A later phase can only make a test's outcome worse: a failing teardown turns a pass into error.
_RANK = {"pass": 0, "skip": 1, "xfail": 1, "fail": 2, "error": 3}


def _phase_outcome(report: pytest.TestReport) -> str | None:
    is_xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.skipped:
            return "xfail" if is_xfail else "skip"
        return "fail" if report.failed else "pass"
    if report.failed:
        return "error"
    if report.skipped:
        return "xfail" if is_xfail else "skip"
    return None


def _message(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return str(report.wasxfail)
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    lines = str(longrepr or "").strip().splitlines()
    return lines[-1] if lines else ""


def _property_scores(properties: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"name": name.removeprefix(SCORE_PROPERTY_PREFIX), "value": value}
        for name, value in properties
        if name.startswith(SCORE_PROPERTY_PREFIX) and isinstance(value, int | float | str)
    ]


def _numeric(properties: list[tuple[str, Any]]) -> Iterator[tuple[str, float]]:
    for name, value in properties:
        if name in SESSION_PROPERTIES or name == "tier" or isinstance(value, bool):
            continue
        if name.startswith(SCORE_PROPERTY_PREFIX):
            continue
        if isinstance(value, int | float):
            yield str(name), float(value)


def _tier_paths(lines: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for line in lines:
        prefix, sep, tier = line.partition("=")
        if not sep or not prefix.strip() or not tier.strip():
            raise pytest.UsageError(
                f"observatory_tier_paths: expected `path/ = tier`, got {line!r}"
            )
        pairs.append((prefix.strip(), tier.strip().lower()))
    return pairs


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def _from_env(names: tuple[str, ...]) -> str:
    return next((os.environ[name] for name in names if os.environ.get(name)), "")


def _git(root: Path, *args: str) -> str:
    """git's answer in the rootdir, or "" when there is no git or no repository."""
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
