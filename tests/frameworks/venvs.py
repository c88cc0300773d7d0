"""Each framework's own virtual environment, built from tests/frameworks/<name>/requirements.txt.

A framework's pins cannot live beside the server's (and rarely beside each other's), so each gets
a venv of its own, built on first use and rebuilt when its requirements file changes, as
tests/e2e/agents does for agentops. They live under $OBSERVATORY_FRAMEWORK_VENVS (default
.venv/frameworks/<name> in the checkout). Stdlib only.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

# One venv builder for every program of ours that runs in its own environment.
from tests.e2e.agents import AgentEnvError as FrameworkEnvError
from tests.e2e.agents import venv_python

FRAMEWORKS_DIR = Path(__file__).resolve().parent
BASE_DIR = FRAMEWORKS_DIR.parents[1]
VENVS_ENV_VAR = "OBSERVATORY_FRAMEWORK_VENVS"
INSTALL_TIMEOUT = 1200
# The order of value (issue 11): the capture and live runners go through them in this order.
FRAMEWORKS = (
    "autogen",
    "openai_agents",
    "crewai",
    "smolagents",
    "pydantic_ai",
    "traceloop",
    "camel",
    "agentops_legacy",
)
# Those that send agentops 0.3's v2 JSON, not OTLP: CAMEL's tracing is agentops 0.3 (its
# track_agent decorator and ToolEvents, picked at import when AGENTOPS_API_KEY is set).
AGENTOPS_V2 = frozenset({"camel", "agentops_legacy"})


def venvs_root() -> Path:
    configured = os.environ.get(VENVS_ENV_VAR)
    return Path(configured) if configured else BASE_DIR / ".venv" / "frameworks"


def requirements(name: str) -> Path:
    return FRAMEWORKS_DIR / name / "requirements.txt"


def scenario(name: str) -> Path:
    return FRAMEWORKS_DIR / name / "scenario.py"


def framework_python(name: str, *, build: bool = True) -> Path:
    """The python of `name`'s venv; builds it when missing or stale (unless build=False)."""
    wanted = requirements(name)
    if not wanted.exists():
        raise FrameworkEnvError(f"no {wanted.relative_to(BASE_DIR)}")
    return venv_python(venvs_root() / name, wanted, build=build, timeout=INSTALL_TIMEOUT)


def scenario_environ(
    *,
    llm_url: str,
    otlp_url: str,
    api_key: str,
    mode: str,
    agentops: bool = False,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment a user's program would have: the OpenAI client pointed at the fake LLM,
    the OTLP exporter at `otlp_url` with the project key (and agentops too when `agentops`),
    nothing of ours."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(
            ("OTEL_", "OPENAI_", "AGENTOPS_", "TRACELOOP_", "PYTHON", "VIRTUAL_ENV", "DJANGO_")
        )
    }
    return {
        **inherited,
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(FRAMEWORKS_DIR),
        "OPENAI_BASE_URL": f"{llm_url}/v1",
        "OPENAI_API_KEY": "sk-fake-key-for-the-loopback-llm",
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-api-key={api_key}",
        "SCENARIO_SPAN_PROCESSOR": mode,
        # No framework may phone home from a test.
        "CREWAI_DISABLE_TELEMETRY": "true",
        "CREWAI_TRACING_ENABLED": "false",
        "OTEL_SDK_DISABLED": "false",
        "TRACELOOP_TELEMETRY": "false",
        "ANONYMIZED_TELEMETRY": "false",
        **({"AGENTOPS_API_KEY": api_key, "AGENTOPS_API_ENDPOINT": otlp_url} if agentops else {}),
        **(extra or {}),
    }


def run_scenario(
    name: str, python: Path, environ: dict[str, str], cwd: Path, timeout: float = 240.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), str(scenario(name))],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
