"""A small agent run recorded with the legacy agentops SDK (0.3.26), configured as its users do.

    .venv/agentops-legacy/bin/python tests/e2e/agents/legacy_agent.py \
        --server http://127.0.0.1:8000 --api-key <key from create_project>

agentops 0.3 checks the key with uuid.UUID() in agentops.init() and records nothing when that
fails; this program exits 2 then, with what agentops said, so the caller sees why.
"""

from __future__ import annotations

import argparse
import sys

import agentops
from agentops import ActionEvent, ErrorEvent, LLMEvent, ToolEvent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--api-key", required=True)
    args = parser.parse_args()

    agentops.init(
        api_key=args.api_key,
        endpoint=args.server,
        auto_start_session=False,
        instrument_llm_calls=False,
        max_wait_time=500,
    )
    if agentops.get_api_key() is None:
        sys.stderr.write("agentops refused the API key\n")
        return 2
    session = agentops.start_session(tags=["legacy", "weather"])
    if session is None:
        sys.stderr.write("agentops could not start a session\n")
        return 3
    session.record(ActionEvent(action_type="plan", params={"city": "Lisbon"}))
    session.record(
        LLMEvent(
            model="gpt-4o-mini",
            prompt=[{"role": "user", "content": "What should I wear in Lisbon?"}],
            completion={"role": "assistant", "content": "Light clothes."},
            prompt_tokens=12,
            completion_tokens=3,
        )
    )
    session.record(ToolEvent(name="get_weather", params={"city": "Lisbon"}, returns="sunny"))
    session.record(ErrorEvent(error_type="ConnectionError", details="search index offline"))
    session.end_session("Success", end_state_reason="answered")
    sys.stdout.write(f"{session.session_id}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
