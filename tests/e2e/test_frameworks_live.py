"""Real agent frameworks (issue 11) send a small multi-agent run to the live server over OTLP/HTTP
protobuf; we read it back through the REST API as a user would.

Each framework runs its scenario (tests/frameworks/<name>/scenario.py) in its own venv, configured
as its docs tell users to, against the scripted LLM on loopback (tests/frameworks/servers.py), the
only stand-in. Every export is answered after its batch is committed, and the scenario exits only
after its tracer provider has flushed, so nothing here polls.

Selected with `-m frameworks`; `bash scripts/frameworks_live.sh [names]` runs them. A framework
whose venv is missing is skipped (naming the venv) unless OBSERVATORY_FRAMEWORKS_BUILD is 1 (all)
or a comma-separated list naming it (CI's subset, set by scripts/test.sh), which builds it from
PyPI first (minutes for CrewAI, CAMEL and traceloop: see tests/fixtures/frameworks/README.md).

What the mapping of issue 11 must still make true is listed in KNOWN_GAPS: such a check that
fails ends its test as xfail naming it; every other check fails the test. Remove an entry when
the mapping lands (a listed check that passes is reported in the test's output).
"""

from __future__ import annotations

import os
import re
import subprocess
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command

from tests.frameworks.servers import ScriptedLLM
from tests.frameworks.venvs import (
    AGENTOPS_V2,
    FrameworkEnvError,
    framework_python,
    run_scenario,
    scenario_environ,
    venvs_root,
)

pytestmark = pytest.mark.frameworks

BUILD_ENV_VAR = "OBSERVATORY_FRAMEWORKS_BUILD"
SCENARIO_TIMEOUT = 240.0


@dataclass(frozen=True)
class Expected:
    """What a user should see after one run of the framework's scenario."""

    agents: frozenset[str]
    tools: frozenset[str]
    # (sender, receiver) pairs of messages or hand-offs the run must show.
    messages: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    # The framework sends its own cost per LLM call (so no estimate may replace it).
    reports_cost: bool = False
    # A workflow the framework names, finished, with every step of the run in it.
    workflow: str | None = None


EXPECTED = {
    "autogen": Expected(
        agents=frozenset({"researcher", "writer"}),
        tools=frozenset({"lookup_population"}),
        messages=frozenset({("researcher", "RoundRobinGroupChatManager")}),
    ),
    "openai_agents": Expected(
        agents=frozenset({"triage_agent", "billing_agent"}),
        tools=frozenset({"lookup_invoice"}),
        messages=frozenset({("triage_agent", "billing_agent")}),
    ),
    "crewai": Expected(
        agents=frozenset({"Researcher", "Writer"}),
        tools=frozenset({"lookup_population"}),
        messages=frozenset({("Researcher", "Writer"), ("Writer", "Researcher")}),
    ),
    "smolagents": Expected(
        agents=frozenset({"manager", "researcher"}),
        tools=frozenset({"web_search"}),
        messages=frozenset({("manager", "researcher")}),
    ),
    "pydantic_ai": Expected(
        agents=frozenset({"planner", "researcher"}),
        tools=frozenset({"web_search", "ask_researcher"}),
        messages=frozenset({("planner", "researcher")}),
        reports_cost=True,
    ),
    # CAMEL through agentops 0.3 (its integration): a Professor instructs a Searcher, turn by turn.
    "camel": Expected(
        agents=frozenset({"Professor", "Searcher"}),
        tools=frozenset({"math_add"}),
        messages=frozenset({("Professor", "Searcher"), ("Searcher", "Professor")}),
    ),
    # traceloop says nothing of messages: the planner's answer is the booker's input only.
    "traceloop": Expected(
        agents=frozenset({"planner", "booker"}),
        tools=frozenset({"search_flights"}),
        workflow="trip-booking",
    ),
}

MAPPING = "issue 11 mapping (tests/fixtures/frameworks/README.md, 'attributes seen')"
# ("framework", "framework/mode" or "*", check) -> why it fails on the current code. Checks: one_session,
# agent_names, messages, workflow, framework_cost, same_batched_and_simple, uuid_shaped_key.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def known_gap(name: str, mode: str, check: str) -> str | None:
    return (
        KNOWN_GAPS.get((f"{name}/{mode}", check))
        or KNOWN_GAPS.get((name, check))
        or KNOWN_GAPS.get(("*", check))
    )


class Api:
    """The REST API of the live server, read with one project's key."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def rows(self, path: str) -> list[dict[str, Any]]:
        separator = "&" if "?" in path else "?"
        response = self.http.get(
            f"{self.base_url}/api/v1/{path}{separator}page_size=1000", timeout=30
        )
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return list(response.json()["results"])


@dataclass
class Run:
    """One scenario run as stored: what the REST API returns for its project."""

    llm: ScriptedLLM
    sessions: list[dict[str, Any]]
    events: list[dict[str, Any]]
    # /api/v1/agent-instances/: one row per agent per session, with the id events point to.
    agents: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    workflows: list[dict[str, Any]]
    steps: list[dict[str, Any]]
    problems: list[dict[str, Any]]

    def shape(self) -> dict[str, Any]:
        """What must not depend on how the spans were batched: names with each run's uuids
        blanked, counts, who did what; no ids or times."""
        names = {a["agent_id"]: a["name"] for a in self.agents}
        return {
            "sessions": sorted(same(s["name"]) for s in self.sessions),
            "agents": sorted(same(a["name"]) for a in self.agents),
            "event_agents": sorted(
                Counter(
                    (e["kind"], same(e["name"]), same(names.get(e["agent_id"] or "")))
                    for e in self.events
                ).items()
            ),
            "messages": sorted(
                (same(m["sender"]), tuple(sorted(same(r) for r in m["receivers"])))
                for m in self.messages
            ),
            "workflows": sorted(
                (same(w["name"]), w["status"], w["step_count"]) for w in self.workflows
            ),
            "steps": sorted(
                (same(s["workflow_name"]), same(s["name"]), same(names.get(s["agent_id"] or "")))
                for s in self.steps
            ),
        }


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def same(name: str | None) -> str:
    """A name as it compares across two runs of one scenario (AutoGen and CrewAI put a fresh
    uuid in names)."""
    return UUID.sub("<uuid>", name or "")


def build_wanted(name: str) -> bool:
    """OBSERVATORY_FRAMEWORKS_BUILD=1 builds every missing venv, "autogen,pydantic_ai" those."""
    wanted = os.environ.get(BUILD_ENV_VAR, "")
    return wanted == "1" or name in wanted.split(",")


@pytest.fixture(scope="module")
def pythons() -> Callable[[str], Path]:
    """The venv python of a framework, or a skip naming the venv that is missing."""
    found: dict[str, Path] = {}

    def python(name: str) -> Path:
        if name not in found:
            try:
                found[name] = framework_python(name, build=build_wanted(name))
            except FrameworkEnvError as exc:
                pytest.skip(
                    f"no venv for {name} at {venvs_root() / name} ({exc}); "
                    f"set {BUILD_ENV_VAR}=1 (or ={name}) to build it from PyPI"
                )
        return found[name]

    return python


def new_key(project: Any) -> str:
    from ingest.models import ApiKey

    _, raw_key = ApiKey.generate(project)
    return raw_key


def run_framework(name: str, mode: str, python: Path, server_url: str, key: str, cwd: Path) -> Run:
    with ScriptedLLM() as llm:
        environ = scenario_environ(
            llm_url=llm.url,
            otlp_url=server_url,
            api_key=key,
            mode=mode,
            agentops=name in AGENTOPS_V2,
        )
        try:
            done = run_scenario(name, python, environ, cwd, timeout=SCENARIO_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(
                f"{name}/{mode} did not finish in {SCENARIO_TIMEOUT:.0f} s:\n{exc.stderr!r}"
            )
    assert done.returncode == 0, (
        f"{name}/{mode} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    api = Api(server_url, key)
    return Run(
        llm=llm,
        sessions=api.rows("sessions/"),
        events=api.rows("events/"),
        agents=api.rows("agent-instances/"),
        messages=api.rows("messages/"),
        workflows=api.rows("workflows/"),
        steps=api.rows("steps/"),
        problems=api.rows("ingest-problems/"),
    )


class Checks:
    """Checks a user would notice; a failing one is an xfail only if KNOWN_GAPS lists it."""

    def __init__(self, name: str, mode: str) -> None:
        self.name = name
        self.mode = mode
        self.gaps: list[str] = []
        self.failures: list[str] = []
        self.fixed: list[str] = []

    def check(self, check: str, ok: bool, detail: str) -> None:
        gap = known_gap(self.name, self.mode, check)
        if ok:
            if gap:
                self.fixed.append(check)
        elif gap is None:
            self.failures.append(f"{check}: {detail}")
        else:
            self.gaps.append(f"{check} ({gap}): {detail}")

    def finish(self) -> None:
        if self.fixed:
            warnings.warn(
                f"{self.name}/{self.mode}: now passing, remove from KNOWN_GAPS: {self.fixed}",
                stacklevel=1,
            )
        if self.failures:
            pytest.fail(f"{self.name}/{self.mode}: " + "\n".join(self.failures + self.gaps))
        if self.gaps:
            pytest.xfail("; ".join(self.gaps))


def assert_basics(name: str, run: Run) -> None:
    """What already works for every framework: nothing refused, every LLM call stored once with
    its model and tokens, the scenario's tools as tool events."""
    assert run.problems == [], f"{name}: refused records: {run.problems}"
    llm_events = [e for e in run.events if e["kind"] == "llm"]
    assert len(llm_events) == len(run.llm.completions), (
        f"{name}: {len(llm_events)} LLM events for {len(run.llm.completions)} LLM calls"
    )
    assert Counter((e["prompt_tokens"], e["completion_tokens"]) for e in llm_events) == Counter(
        (c.prompt_tokens, c.completion_tokens) for c in run.llm.completions
    ), f"{name}: tokens differ from what the LLM answered"
    assert {e["model"] for e in llm_events} == {"gpt-4o-mini-2024-07-18"}
    tools = {e["name"] for e in run.events if e["kind"] == "tool"}
    assert EXPECTED[name].tools <= tools, f"{name}: tool events {tools}"


def assert_mapping(name: str, run: Run, checks: Checks) -> None:
    expected = EXPECTED[name]
    checks.check(
        "one_session",
        len(run.sessions) == 1,
        f"{len(run.sessions)} sessions: {[s['name'] for s in run.sessions][:20]}",
    )
    names = {a["name"] for a in run.agents}
    checks.check("agent_names", names == expected.agents, f"agents {sorted(names)}")
    pairs = {(m["sender"], r) for m in run.messages for r in m["receivers"]}
    if expected.messages:
        checks.check(
            "messages",
            all(
                any(s.startswith(sender) and r.startswith(receiver) for s, r in pairs)
                for sender, receiver in expected.messages
            ),
            f"messages {sorted(pairs)[:20]}, want {sorted(expected.messages)}",
        )
    if expected.workflow:
        named = [w for w in run.workflows if w["name"] == expected.workflow]
        checks.check(
            "workflow",
            len(named) == 1 == len(run.workflows)
            and named[0]["status"] != "running"
            and named[0]["step_count"] == len(run.steps) > 0,
            f"workflows {[(w['name'], w['status'], w['step_count']) for w in run.workflows]}, "
            f"{len(run.steps)} steps",
        )
    if expected.reports_cost:
        llm_events = [e for e in run.events if e["kind"] == "llm"]
        checks.check(
            "framework_cost",
            all(e["cost"] and not e["is_cost_estimated"] for e in llm_events),
            f"costs {[(e['cost'], e['is_cost_estimated']) for e in llm_events]}",
        )


FRAMEWORK_NAMES = sorted(EXPECTED)


@pytest.mark.parametrize("mode", ["batched", "simple"])
@pytest.mark.parametrize("name", FRAMEWORK_NAMES)
def test_a_framework_run_reads_back_as_one_session_with_its_agents_and_messages(
    name: str,
    mode: str,
    live_server: Any,
    project_with_key: tuple[Any, str],
    pythons: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    python = pythons(name)
    _, key = project_with_key
    run = run_framework(name, mode, python, live_server.url, key, tmp_path)
    assert_basics(name, run)
    checks = Checks(name, mode)
    assert_mapping(name, run, checks)
    checks.finish()


@pytest.mark.parametrize("name", FRAMEWORK_NAMES)
def test_batched_and_simple_exports_store_the_same_run(
    name: str,
    live_server: Any,
    project_with_key: tuple[Any, str],
    pythons: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    """SimpleSpanProcessor sends each span as it ends, children before parents, one request
    each; the stored run must be the one BatchSpanProcessor's few requests give."""
    python = pythons(name)
    from ingest.models import Project

    project, _ = project_with_key
    other = Project.objects.create(name="Simple exports", slug="simple-exports")
    runs = {}
    for mode, key in (("batched", new_key(project)), ("simple", new_key(other))):
        (tmp_path / mode).mkdir()
        runs[mode] = run_framework(name, mode, python, live_server.url, key, tmp_path / mode)
    batched, simple = runs["batched"].shape(), runs["simple"].shape()
    checks = Checks(name, "both")
    checks.check(
        "same_batched_and_simple",
        batched == simple,
        f"batched {batched}\nsimple {simple}",
    )
    checks.finish()


def test_agentops_legacy_sends_its_session_with_a_key_from_create_project(
    live_server: Any, pythons: Callable[[str], Path], tmp_path: Path
) -> None:
    """agentops 0.3.26, unmodified, with the key `create_project` prints: it keeps a key only if
    `uuid.UUID(key)` accepts it, and otherwise sends nothing at all."""
    python = pythons("agentops_legacy")
    out = StringIO()
    call_command("create_project", "Legacy agents", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    with ScriptedLLM() as llm:
        environ = scenario_environ(
            llm_url=llm.url,
            otlp_url=live_server.url,
            api_key=key,
            mode="batched",
            extra={"AGENTOPS_API_KEY": key},
        )
        done = run_scenario("agentops_legacy", python, environ, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    sessions = Api(live_server.url, key).rows("sessions/")
    checks = Checks("agentops_legacy", "create_project_key")
    checks.check(
        "uuid_shaped_key",
        [s["tags"] for s in sessions] == [["legacy"]],
        f"sessions {sessions}; agentops said: {(done.stdout + done.stderr)[-600:]}",
    )
    checks.finish()
