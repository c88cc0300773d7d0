"""The real agentops SDK (0.4.21, with the OpenTelemetry 1.44 pin and the openai instrumentation)
sends an agent's run to the live server; we read it back through the REST API as a user would.

The agent (tests/e2e/agents/weather_agent.py) runs in a subprocess with its own venv, configured
exactly as README.md tells agentops users to; its OpenAI client talks to a fake OpenAI-compatible
server in this process (tests/e2e/fake_llm.py), the only stand-in: it replaces the external LLM
provider. The subprocess exits only after agentops has flushed its spans, and every export is
answered after its batch is committed, so nothing here needs to poll.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command

from tests.e2e.agents import AgentEnvError, agent_python, run_weather_agent
from tests.e2e.fake_llm import MODEL, FakeLLM
from tests.waiting import DEADLINE as AGENT_TIMEOUT

# ingest/data/model_prices.json, USD per million tokens for gpt-4o-mini-*.
PROMPT_PRICE, COMPLETION_PRICE = 0.15, 0.60


@pytest.fixture(scope="module")
def agentops_python() -> Path:
    try:
        return agent_python()
    except AgentEnvError as exc:
        pytest.fail(f"could not build the agentops environment (.venv/agentops): {exc}")


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


class Api:
    """The REST API of the live server, read with the project's API key."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str) -> Any:
        response = self.http.get(f"{self.base_url}/api/v1/{path}", timeout=30)
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        return response.json()

    def rows(self, path: str) -> list[dict[str, Any]]:
        separator = "&" if "?" in path else "?"
        return list(self.get(f"{path}{separator}page_size=1000")["results"])

    def session_named(self, name: str) -> dict[str, Any]:
        matches = [s for s in self.rows("sessions/") if s["name"] == name]
        assert len(matches) == 1, f"sessions named {name!r}: {matches}"
        return matches[0]


def run_agent(
    python: Path, live_server: Any, key: str, fake: FakeLLM, cwd: Path, **options: Any
) -> subprocess.CompletedProcess[str]:
    try:
        done = run_weather_agent(
            python,
            server_url=live_server.url,
            api_key=key,
            llm_url=fake.url,
            cwd=cwd,
            timeout=AGENT_TIMEOUT,
            **options,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"the agent did not finish within {AGENT_TIMEOUT:.0f} s; stderr:\n{exc.stderr!r}"
        )
    assert done.returncode == 0, (
        f"the agent exited with {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    return done


def by_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return sorted((e for e in events if e["kind"] == kind), key=lambda e: e["started_at"])


def test_an_agentops_run_reads_back_as_sessions_events_and_logs(
    live_server: Any,
    project_with_key: tuple[Any, str],
    agentops_python: Path,
    fake_llm: FakeLLM,
    tmp_path: Path,
) -> None:
    _, key = project_with_key
    run_agent(agentops_python, live_server, key, fake_llm, tmp_path, wait_for_token=20)
    api = Api(live_server.url, key)

    run = api.session_named("weather-run")
    retry = api.session_named("weather-retry")
    assert (run["end_state"], retry["end_state"]) == ("success", "fail")
    assert set(run["tags"]) >= {"weather", "lisbon"}
    assert len(run["id"]) == 32  # one agentops trace is one session, keyed by its trace id

    events = api.rows(f"sessions/{run['id']}/events/")
    assert {(e["kind"], e["name"]) for e in by_kind(events, "action")} >= {
        ("action", "WeatherAgent"),
        ("action", "plan"),
        ("action", "summarize"),
    }

    llm_calls = by_kind(events, "llm")
    assert len(llm_calls) == 2 == len(fake_llm.completions)
    for event, sent in zip(llm_calls, fake_llm.completions, strict=True):
        assert event["model"] == MODEL
        assert (event["prompt_tokens"], event["completion_tokens"]) == (
            sent.prompt_tokens,
            sent.completion_tokens,
        )
        expected = sent.prompt_tokens * PROMPT_PRICE + sent.completion_tokens * COMPLETION_PRICE
        assert event["cost"] == pytest.approx(expected / 1e6)
    asked, streamed = (api.get(f"events/{e['id']}/") for e in llm_calls)
    requested = fake_llm.completions[0].tool_calls[0]
    assert [(c["id"], c["name"]) for c in asked["completion"]["tool_calls"]] == [
        (requested["id"], "get_weather")
    ]
    assert asked["prompt"][-1] == {
        "role": "user",
        "content": "What should I wear in Lisbon today?",
    }
    assert streamed["completion"]["content"] == fake_llm.completions[1].content

    tools = {e["name"]: e for e in by_kind(events, "tool")}
    assert set(tools) == {"get_weather", "search_events"}
    weather = api.get(f"events/{tools['get_weather']['id']}/")
    assert weather["cost"] == pytest.approx(0.01)
    assert weather["params"] == {"args": [], "kwargs": {"city": "Lisbon"}}
    assert weather["returns"] == {"city": "Lisbon", "forecast": "sunny", "temp_c": 21}
    assert tools["search_events"]["status"] == "error"

    errors = by_kind(events, "error")
    assert [(e["error_type"], e["error_message"]) for e in errors] == [
        ("ConnectionError", "search index offline while looking up 'events in Lisbon'")
    ]
    assert errors[0]["parent_span_id"] == tools["search_events"]["span_id"]

    retry_errors = by_kind(api.rows(f"sessions/{retry['id']}/events/"), "error")
    assert [e["error_type"] for e in retry_errors] == ["LookupError"]

    log = [line["text"] for line in api.rows(f"sessions/{run['id']}/transcript/?roles=log")]
    assert any(text.endswith("agent starting: weather for Lisbon") for text in log), log
    assert any("event search failed: search index offline" in text for text in log), log
    assert any(fake_llm.completions[1].content in text for text in log), log


def test_the_api_key_header_lets_spans_in_before_the_token_arrives(
    live_server: Any,
    project_with_key: tuple[Any, str],
    agentops_python: Path,
    fake_llm: FakeLLM,
    tmp_path: Path,
) -> None:
    """No waiting for the token: a short script exports its first spans before agentops has its
    bearer token (agentops-protocol.md section 3). With the key in OTEL_EXPORTER_OTLP_TRACES_HEADERS,
    as README.md recommends, every export carries a credential and nothing is dropped."""
    _, key = project_with_key
    run_agent(
        agentops_python,
        live_server,
        key,
        fake_llm,
        tmp_path,
        city="Oslo",
        extra_env={"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"x-agentops-api-key={key}"},
    )
    api = Api(live_server.url, key)

    run = api.session_named("weather-run")
    assert run["end_state"] == "success"
    events = api.rows(f"sessions/{run['id']}/events/")
    assert len(by_kind(events, "llm")) == 2
    assert {e["name"] for e in by_kind(events, "tool")} == {"get_weather", "search_events"}
    assert api.session_named("weather-retry")["end_state"] == "fail"


def test_seed_agentops_demo_sends_sessions_from_the_real_sdk(
    live_server: Any, project_with_key: tuple[Any, str], agentops_python: Path
) -> None:
    _, key = project_with_key
    out = StringIO()
    call_command("seed_agentops_demo", url=live_server.url, api_key=key, runs=2, stdout=out)

    assert "2 of 2 agent runs sent (4 sessions, 4 LLM calls" in out.getvalue()
    sessions = Api(live_server.url, key).rows("sessions/")
    assert sorted((s["name"], s["end_state"]) for s in sessions) == [
        ("weather-retry", "fail"),
        ("weather-retry", "fail"),
        ("weather-run", "success"),
        ("weather-run", "success"),
    ]


def test_seed_agentops_demo_without_agentops_says_so_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, project_with_key: tuple[Any, str]
) -> None:
    """The server's own environment cannot hold agentops (see tests/e2e/agents/requirements.txt)."""
    monkeypatch.setenv("OBSERVATORY_AGENTOPS_PYTHON", sys.executable)
    out = StringIO()
    call_command("seed_agentops_demo", api_key=project_with_key[1], stdout=out)
    assert "Skipping the agentops demo: agentops is not installed" in out.getvalue()
