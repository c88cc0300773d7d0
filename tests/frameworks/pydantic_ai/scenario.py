"""pydantic-ai: a planner delegates to a researcher agent through a tool (pydantic-ai's
"agent delegation"); the researcher calls one tool. Traced by pydantic-ai's built-in
instrumentation, as its docs say for a plain OpenTelemetry SDK: Agent.instrument_all() with the
global tracer provider.
"""

from __future__ import annotations

from pydantic_ai import Agent, RunContext
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from scenario_common import LLM_BASE_URL, MODEL, tracer_provider

model = OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=LLM_BASE_URL, api_key="sk-fake"))
researcher = Agent(model, name="researcher", instructions="Look facts up with web_search.")
planner = Agent(model, name="planner", instructions="Plan the answer; ask the researcher.")


@researcher.tool_plain
def web_search(query: str) -> str:
    """Search the web."""
    return f"Top result for {query}: Lisbon has about 545,000 inhabitants."


@planner.tool
async def ask_researcher(ctx: RunContext[None], question: str) -> str:
    """Ask the researcher agent."""
    result = await researcher.run(question, usage=ctx.usage)
    return result.output


def main() -> None:
    provider = tracer_provider("pydantic-ai-planner")
    Agent.instrument_all()
    print(planner.run_sync("How many people live in Lisbon?").output)
    provider.shutdown()


main()
