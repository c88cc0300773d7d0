"""smolagents: a manager agent calls its managed researcher agent, which calls one tool.
Traced as openinference's docs say: SmolagentsInstrumentor().instrument(tracer_provider=...).
"""

from __future__ import annotations

from openinference.instrumentation.smolagents import SmolagentsInstrumentor
from scenario_common import LLM_BASE_URL, MODEL, tracer_provider
from smolagents import OpenAIServerModel, ToolCallingAgent, tool


@tool
def web_search(query: str) -> str:
    """Search the web.

    Args:
        query: What to look for.
    """
    return f"Top result for {query}: Lisbon has about 545,000 inhabitants."


def main() -> None:
    provider = tracer_provider("smolagents-manager")
    SmolagentsInstrumentor().instrument(tracer_provider=provider)
    model = OpenAIServerModel(model_id=MODEL, api_base=LLM_BASE_URL, api_key="sk-fake")
    researcher = ToolCallingAgent(
        tools=[web_search],
        model=model,
        name="researcher",
        description="Looks things up on the web.",
        max_steps=3,
    )
    manager = ToolCallingAgent(
        tools=[], model=model, managed_agents=[researcher], name="manager", max_steps=3
    )
    print(manager.run("How many people live in Lisbon?"))
    provider.shutdown()


main()
