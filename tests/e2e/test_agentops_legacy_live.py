"""The real legacy agentops SDK (0.3.26) sends a session with the key `create_project` prints.

agentops 0.3 refuses any key `uuid.UUID()` cannot parse before it sends anything, so this is the
test that our keys are UUID-shaped. The agent (tests/e2e/agents/legacy_agent.py) runs in its own
venv (.venv/agentops-legacy) against the live server; we read the run back through the REST API.
"""

from __future__ import annotations

import subprocess
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import call_command

from tests.e2e.agents import LEGACY_AGENT, AgentEnvError, agent_environ, legacy_agent_python


@pytest.fixture(scope="module")
def legacy_python() -> Path:
    try:
        return legacy_agent_python()
    except AgentEnvError as exc:
        pytest.fail(f"could not build the agentops 0.3.26 environment: {exc}")


def test_agentops_0_3_sends_its_session_with_a_key_from_create_project(
    live_server: Any, legacy_python: Path, tmp_path: Path
) -> None:
    out = StringIO()
    call_command("create_project", "Legacy agents", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]

    done = subprocess.run(
        [str(legacy_python), str(LEGACY_AGENT), "--server", live_server.url, "--api-key", key],
        cwd=tmp_path,
        env=agent_environ(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert "invalid" not in done.stderr.lower(), done.stderr
    session_id = done.stdout.strip().splitlines()[-1]

    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {key}"
    api = f"{live_server.url}/api/v1"
    sessions = http.get(f"{api}/sessions/?page_size=100", timeout=30).json()["results"]
    assert len(sessions) == 1
    session = sessions[0]
    assert session["end_state"] == "success"
    assert set(session["tags"]) >= {"legacy", "weather"}
    events = http.get(f"{api}/sessions/{session['id']}/events/?page_size=100", timeout=30).json()
    kinds = sorted(e["kind"] for e in events["results"])
    assert kinds == ["action", "error", "llm", "tool"], (session_id, events)
    llm = next(e for e in events["results"] if e["kind"] == "llm")
    assert (llm["model"], llm["prompt_tokens"], llm["completion_tokens"]) == ("gpt-4o-mini", 12, 3)
