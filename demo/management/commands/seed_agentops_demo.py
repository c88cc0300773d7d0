"""seed_agentops_demo: demo sessions sent over HTTP by the real agentops SDK, as a user's agent.

Runs tests/e2e/agents/weather_agent.py (agentops 0.4.21 + openai, in its own venv .venv/agentops,
built on first use) --runs times against --url. Its OpenAI client talks to a fake OpenAI-compatible
server this command starts on 127.0.0.1, so no LLM provider or key is needed. Each run sends two
sessions: "weather-run" (LLM calls, tools, a failing tool, printed lines) and "weather-retry".
Without the agentops environment (no package index to build it from) it says so and exits 0.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

CITIES = ("Lisbon", "Paris", "Oslo", "Cairo", "Lima")
RUN_TIMEOUT = 120.0
TOKEN_WAIT_SECONDS = 20.0


class Command(BaseCommand):
    help = "Send demo sessions with the real agentops SDK (and a local fake LLM) to a server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL.")
        parser.add_argument("--api-key", required=True, help="A project API key.")
        parser.add_argument("--runs", type=int, default=5, help="Agent runs (2 sessions each).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["runs"] < 1:
            raise CommandError("--runs must be at least 1")
        python = self._agent_python()
        if python is None:
            return
        from tests.e2e.fake_llm import FakeLLM

        url = options["url"].rstrip("/")
        failures = 0
        with FakeLLM() as fake, tempfile.TemporaryDirectory(prefix="agentops-demo-") as tmp:
            for run in range(options["runs"]):
                city = CITIES[run % len(CITIES)]
                if not self._run(python, url, options["api_key"], fake.url, city, tmp):
                    failures += 1
            calls = len(fake.completions)
        sent = options["runs"] - failures
        self.stdout.write(
            f"agentops demo: {sent} of {options['runs']} agent runs sent ({2 * sent} sessions, "
            f"{calls} LLM calls to the local fake model)."
        )
        if failures:
            raise CommandError(f"{failures} agentops run(s) failed; see the output above")

    def _agent_python(self) -> Path | None:
        try:
            from tests.e2e.agents import AGENT_VENV, AgentEnvError, agent_python
        except ImportError as exc:
            self.stdout.write(f"Skipping the agentops demo: the agent program is missing ({exc}).")
            return None
        self.stdout.write(f"agentops environment: {AGENT_VENV} (built on first use, about 10 s)")
        try:
            return agent_python()
        except AgentEnvError as exc:
            self.stdout.write(
                "Skipping the agentops demo: agentops is not installed and its environment "
                f"could not be built ({exc}). The other demo data is unaffected; run "
                "`python manage.py seed_agentops_demo` again once pip can reach a package index."
            )
            return None

    def _run(self, python: Path, url: str, api_key: str, llm_url: str, city: str, tmp: str) -> bool:
        from tests.e2e.agents import run_weather_agent

        try:
            done = run_weather_agent(
                python,
                server_url=url,
                api_key=api_key,
                llm_url=llm_url,
                city=city,
                wait_for_token=TOKEN_WAIT_SECONDS,
                cwd=Path(tmp),
                timeout=RUN_TIMEOUT,
            )
        except subprocess.TimeoutExpired:
            self.stderr.write(f"agentops run for {city} did not finish in {RUN_TIMEOUT:.0f} s")
            return False
        except OSError as exc:
            self.stderr.write(f"agentops run for {city} could not start: {exc}")
            return False
        if done.returncode != 0:
            self.stderr.write(
                f"agentops run for {city} exited with {done.returncode}:\n{done.stderr[-2000:]}"
            )
            return False
        self.stdout.write(f"  sent an agentops run for {city}")
        return True
