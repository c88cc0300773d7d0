"""Capture what each framework really exports: `python -m tests.frameworks.capture [names]`.

For each framework (default: all that have a venv or can build one) and each span processor
(batched, simple): start the scripted LLM and the capture server on loopback, run the framework's
scenario in its own venv, and write every export request body to
tests/fixtures/frameworks/<name>/<mode>/NNN-<signal>.bin with an index.json beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.frameworks.servers import CaptureServer, ScriptedLLM
from tests.frameworks.venvs import (
    AGENTOPS_V2,
    BASE_DIR,
    FRAMEWORKS,
    FrameworkEnvError,
    framework_python,
    requirements,
    run_scenario,
    scenario_environ,
)

FIXTURES = BASE_DIR / "tests" / "fixtures" / "frameworks"
MODES = ("batched", "simple")
CAPTURE_KEY = "obs_capture_placeholder_key"
# agentops 0.3.26 is not OTLP: its two runs differ by key, not by span processor. The UUID is
# made up for the capture (no server knows it).
LEGACY_KEYS = {"obs_key": CAPTURE_KEY, "uuid_key": "5b9a4c1e-3f0d-4b7a-9c2e-8d1f6a0b3c47"}
# What the capture server answers agentops 0.3.26 so it goes on past create_session.
LEGACY_REPLIES = {
    "/v2/create_agent": b'{"status": "success"}',
    "/v2/create_session": b'{"status": "success", "jwt": "capture-jwt", "session_url": ""}',
    "/v2/reauthorize_jwt": b'{"status": "success", "jwt": "capture-jwt"}',
    "/v2/create_events": b'{"status": "success"}',
    "/v2/update_session": b'{"status": "success", "token_cost": "0.00"}',
}


def modes(name: str) -> tuple[str, ...]:
    return tuple(LEGACY_KEYS) if name == "agentops_legacy" else MODES


def pins(name: str) -> dict[str, str]:
    found = {}
    for line in requirements(name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            package, version = line.split("==", 1)
            found[package.split("[")[0]] = version
    return found


def capture(name: str, mode: str, python: Path, llm_log: str | None = None) -> int:
    out = FIXTURES / name / mode
    shutil.rmtree(out, ignore_errors=True)
    legacy = name in AGENTOPS_V2
    sink_server = CaptureServer(out, replies=LEGACY_REPLIES if legacy else {})
    with ScriptedLLM() as llm, sink_server as sink, tempfile.TemporaryDirectory() as cwd:
        # agentops 0.3 sends nothing with a key that is not a UUID.
        key = LEGACY_KEYS.get(mode, LEGACY_KEYS["uuid_key"] if legacy else CAPTURE_KEY)
        environ = scenario_environ(
            llm_url=llm.url, otlp_url=sink.url, api_key=key, mode=mode, agentops=legacy
        )
        try:
            done = run_scenario(name, python, environ, Path(cwd))
        except subprocess.TimeoutExpired as exc:
            print(f"{name}/{mode}: timed out\n{exc.stderr}", file=sys.stderr)
            return 1
        index = {
            "framework": name,
            "span_processor": mode,
            "versions": pins(name),
            "llm_calls": len(llm.completions),
            "exit_status": done.returncode,
            # What the program printed and logged: agentops 0.3.26 says why it sent nothing.
            "output_tail": (
                (done.stdout + done.stderr)[-1500:] if name == "agentops_legacy" else None
            ),
            "requests": sink.requests,
        }
        (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")
        if llm_log:
            with open(llm_log, "a") as log:
                log.writelines(json.dumps(r) + "\n" for r in llm.requests)
    print(
        f"{name}/{mode}: exit {done.returncode}, {len(llm.completions)} LLM calls, "
        f"{len(sink.requests)} export requests"
    )
    if done.returncode != 0:
        print(done.stdout[-2000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
    return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", default=list(FRAMEWORKS))
    parser.add_argument("--mode", action="append", help="batched, simple (obs_key, uuid_key)")
    parser.add_argument("--llm-log", help="append every LLM request body to this JSONL file")
    args = parser.parse_args()
    failures = 0
    for name in args.names:
        try:
            python = framework_python(name)
        except FrameworkEnvError as exc:
            print(f"{name}: no venv: {exc}", file=sys.stderr)
            failures += 1
            continue
        for mode in args.mode or modes(name):
            failures += capture(name, mode, python, args.llm_log) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
