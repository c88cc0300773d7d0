"""Agent programs that use the real agentops SDK, and the environment they run in.

They run as subprocesses with their own venv (.venv/agentops, from requirements.txt here), as a
user's agent runs beside our server: agentops 0.4.21 cannot be installed next to the server's
pins (it requires packaging<25; kombu[redis] 5.7.0 requires packaging==26.3). The venv is built
on first use and rebuilt when requirements.txt changes. Used by tests/e2e/test_agentops_live.py
and the seed_agentops_demo management command.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from pathlib import Path

AGENTS_DIR = Path(__file__).resolve().parent
BASE_DIR = AGENTS_DIR.parents[2]
REQUIREMENTS = AGENTS_DIR / "requirements.txt"
WEATHER_AGENT = AGENTS_DIR / "weather_agent.py"
AGENT_VENV = BASE_DIR / ".venv" / "agentops"
# agentops 0.3.26, the legacy SDK (v2 REST API), in a venv of its own: it cannot share 0.4.21's.
LEGACY_REQUIREMENTS = AGENTS_DIR / "requirements-legacy.txt"
LEGACY_AGENT = AGENTS_DIR / "legacy_agent.py"
LEGACY_VENV = BASE_DIR / ".venv" / "agentops-legacy"
# Set to a python that already has the pins of requirements.txt to skip the venv.
PYTHON_ENV_VAR = "OBSERVATORY_AGENTOPS_PYTHON"
INSTALL_TIMEOUT = 600


class AgentEnvError(Exception):
    """The agentops environment could not be built (no package index, no venv module…)."""


def agent_python() -> Path:
    """A python with agentops 0.4.21 and its pins; builds .venv/agentops when it is missing or
    out of date (about 10 s). Safe to call from several processes at once."""
    configured = os.environ.get(PYTHON_ENV_VAR)
    if configured:
        return _checked(Path(configured))
    return venv_python(AGENT_VENV, REQUIREMENTS)


def legacy_agent_python() -> Path:
    """A python with agentops 0.3.26 (.venv/agentops-legacy, built like agent_python's)."""
    return venv_python(LEGACY_VENV, LEGACY_REQUIREMENTS)


def venv_python(
    venv: Path, requirements: Path, *, build: bool = True, timeout: float = INSTALL_TIMEOUT
) -> Path:
    """The python of `venv`, (re)built from `requirements` when missing or stale, unless
    build=False (then AgentEnvError). Safe to call from several processes at once. Also builds
    the framework venvs of tests/frameworks/venvs.py."""
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text() == digest:
            return python
        if not build:
            raise AgentEnvError(f"{venv} is missing or older than {requirements.name}")
        _run([sys.executable, "-m", "venv", "--clear", str(venv)], timeout)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip, "-r", str(requirements)], timeout)
        stamp.write_text(digest)
    return python


def _checked(python: Path) -> Path:
    """`python` if it can import agentops; AgentEnvError otherwise."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('agentops') is None)"
    try:
        found = subprocess.run([str(python), "-c", probe], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentEnvError(f"{PYTHON_ENV_VAR}={python}: {exc}") from exc
    if found.returncode != 0:
        raise AgentEnvError(f"agentops is not installed for {PYTHON_ENV_VAR}={python}")
    return python


def _run(command: list[str], timeout: float) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentEnvError(f"{' '.join(command[:4])}…: {exc}") from exc
    if done.returncode != 0:
        raise AgentEnvError(f"{' '.join(command[:4])}… failed:\n{done.stderr[-3000:]}")


def agent_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for an agent subprocess: ours without any AGENTOPS_*/OTEL_* settings
    (the agent configures itself in agentops.init) or Python path overrides, plus `extra`."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AGENTOPS_", "OTEL_", "PYTHON", "VIRTUAL_ENV", "DJANGO_"))
    }
    return {**inherited, "PYTHONUNBUFFERED": "1", **(extra or {})}


def run_weather_agent(
    python: Path,
    *,
    server_url: str,
    api_key: str,
    llm_url: str,
    city: str = "Lisbon",
    wait_for_token: float = 0.0,
    extra_env: dict[str, str] | None = None,
    cwd: Path,
    timeout: float = 90.0,
) -> subprocess.CompletedProcess[str]:
    """Run weather_agent.py to the end (agentops flushes its spans at exit). `cwd` receives the
    agentops.log file the SDK writes. Raises subprocess.TimeoutExpired when it hangs."""
    command = [
        str(python),
        str(WEATHER_AGENT),
        "--server",
        server_url,
        "--api-key",
        api_key,
        "--llm-url",
        llm_url,
        "--city",
        city,
        "--wait-for-token",
        str(wait_for_token),
    ]
    return subprocess.run(
        command,
        cwd=cwd,
        env=agent_environ(extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
