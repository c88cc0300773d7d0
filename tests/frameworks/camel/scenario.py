"""CAMEL: a RolePlaying session, a Professor (user agent) instructing a Searcher (assistant
agent) that has MathToolkit's tools, traced as CAMEL's docs tell users: its AgentOps integration
(camel-ai's `dev_tools` extra pins agentops>=0.3.21,<0.4, the legacy SDK; CAMEL's cookbook
"Track CAMEL Agents with AgentOps" and examples/observability/agentops_track_roleplaying_with_function.py).

The key and the server come from AGENTOPS_API_KEY and AGENTOPS_API_ENDPOINT, which must be set
before camel is imported: CAMEL picks agentops' track_agent and ToolEvent at import time when
AGENTOPS_API_KEY is set. agentops 0.3 sends its events through a BatchSpanProcessor of its own
(export batches of max_queue_size // 20, at most 32); SCENARIO_SPAN_PROCESSOR=simple sets
max_queue_size=20, so each event goes in a request of its own. (max_queue_size=1 would do so
too, but its processor then drops every event recorded while one is being sent.)
"""

from __future__ import annotations

import agentops
from camel.models import ModelFactory
from camel.societies import RolePlaying
from camel.types import ModelPlatformType
from camel.utils import BaseTokenCounter
from scenario_common import LLM_BASE_URL, MODE, MODEL

# As CAMEL's example: init after importing camel (agentops 0.3 patches only the LLM clients
# already imported, here openai), then import the toolkits so that their calls are recorded.
agentops.init(tags=["CAMEL X AgentOps"], max_queue_size=20 if MODE == "simple" else None)

from camel.toolkits import MathToolkit  # noqa: E402


class OfflineTokenCounter(BaseTokenCounter):
    """CAMEL counts tokens only to fit its memory into the context window; its default counter
    (tiktoken) downloads its encoding on first use, and tests have no network. The tokens
    agentops records come from the LLM's answers, not from here."""

    def count_tokens_from_messages(self, messages):
        return sum(len(str(m.get("content") or "")) // 4 + 4 for m in messages)

    def encode(self, text):
        return list(text.encode())

    def decode(self, token_ids):
        return bytes(token_ids).decode(errors="replace")


def model():
    return ModelFactory.create(
        model_platform=ModelPlatformType.OPENAI,
        model_type=MODEL,
        url=LLM_BASE_URL,
        token_counter=OfflineTokenCounter(),
    )


def main() -> None:
    session = RolePlaying(
        assistant_role_name="Searcher",
        user_role_name="Professor",
        assistant_agent_kwargs={"model": model(), "tools": MathToolkit().get_tools()},
        user_agent_kwargs={"model": model()},
        task_prompt="Estimate the age of the University of Oxford in 2024, plus ten years.",
        with_task_specify=False,
    )
    input_msg = session.init_chat()
    for _ in range(2):
        assistant_response, user_response = session.step(input_msg)
        if assistant_response.terminated or user_response.terminated:
            break
        print("Professor:", user_response.msg.content)
        print("Searcher:", assistant_response.msg.content)
        if "CAMEL_TASK_DONE" in user_response.msg.content:
            break
        input_msg = assistant_response.msg
    agentops.end_session("Success")


main()
