"""OpenAI Agents SDK: a triage agent hands off to a billing agent, which calls one tool, inside
`trace("Billing support", group_id=...)`. Traced as openinference's docs say:
OpenAIAgentsInstrumentor().instrument(tracer_provider=...). The SDK's default Responses API is used.
"""

from __future__ import annotations

from agents import Agent, Runner, function_tool, set_default_openai_client, trace
from openai import AsyncOpenAI
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from scenario_common import LLM_BASE_URL, MODEL, tracer_provider


@function_tool
def lookup_invoice(customer: str) -> str:
    """The open invoice of a customer."""
    return f"{customer} owes 42 EUR on invoice INV-7."


def main() -> None:
    provider = tracer_provider("openai-agents-support")
    OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)
    # A client of our own so nothing goes past loopback; the key is the loopback LLM's.
    set_default_openai_client(AsyncOpenAI(base_url=LLM_BASE_URL), use_for_tracing=False)
    billing = Agent(
        name="billing_agent",
        instructions="Answer billing questions with lookup_invoice.",
        model=MODEL,
        tools=[lookup_invoice],
    )
    triage = Agent(
        name="triage_agent",
        instructions="Hand billing questions to the billing agent.",
        model=MODEL,
        handoffs=[billing],
    )
    with trace("Billing support", group_id="conversation-1234"):
        result = Runner.run_sync(triage, "What does Customer Alice owe?")
    print(result.last_agent.name, result.final_output)
    provider.shutdown()


main()
