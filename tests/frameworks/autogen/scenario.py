"""AutoGen AgentChat: a researcher (with one tool) and a writer in a RoundRobinGroupChat.

Traced as AutoGen's docs say: the runtime gets a tracer_provider (its messaging spans) and
opentelemetry-instrumentation-openai traces the model client's calls.
"""

from __future__ import annotations

import asyncio

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.teams import RoundRobinGroupChat
from autogen_core import SingleThreadedAgentRuntime
from autogen_ext.models.openai import OpenAIChatCompletionClient
from opentelemetry.instrumentation.openai import OpenAIInstrumentor
from scenario_common import LLM_BASE_URL, MODEL, tracer_provider


async def lookup_population(city: str) -> str:
    """The population of a city."""
    return f"{city} has about 545,000 inhabitants."


async def main() -> None:
    provider = tracer_provider("autogen-team")
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    client = OpenAIChatCompletionClient(model=MODEL, base_url=LLM_BASE_URL, api_key="sk-fake")
    researcher = AssistantAgent(
        "researcher",
        model_client=client,
        tools=[lookup_population],
        system_message="Find facts with your tools.",
    )
    writer = AssistantAgent(
        "writer", model_client=client, system_message="Write one sentence from the facts."
    )
    runtime = SingleThreadedAgentRuntime(tracer_provider=provider)
    runtime.start()
    team = RoundRobinGroupChat(
        [researcher, writer], termination_condition=MaxMessageTermination(3), runtime=runtime
    )
    result = await team.run(task="How many people live in Lisbon?")
    print([f"{m.source}: {m.to_text()[:60]}" for m in result.messages])
    await runtime.stop_when_idle()
    await client.close()
    provider.shutdown()


asyncio.run(main())
