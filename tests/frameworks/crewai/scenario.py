"""CrewAI: a researcher and a writer crew, two sequential tasks; the writer may delegate.
Traced as openinference's docs say: CrewAIInstrumentor().instrument(tracer_provider=...), plus
its OpenAI instrumentor for the LLM calls (CrewAI 1.x calls OpenAI models through the openai
client; the CrewAI instrumentor alone records no LLM span).
"""

from __future__ import annotations

from crewai import LLM, Agent, Crew, Process, Task
from crewai.tools import tool
from openinference.instrumentation.crewai import CrewAIInstrumentor
from openinference.instrumentation.openai import OpenAIInstrumentor
from scenario_common import LLM_BASE_URL, MODEL, tracer_provider


@tool("lookup_population")
def lookup_population(city: str) -> str:
    """The population of a city."""
    return f"{city} has about 545,000 inhabitants."


def main() -> None:
    provider = tracer_provider("crewai-crew")
    CrewAIInstrumentor().instrument(tracer_provider=provider)
    OpenAIInstrumentor().instrument(tracer_provider=provider)
    llm = LLM(model=f"openai/{MODEL}", base_url=LLM_BASE_URL, api_key="sk-fake")
    researcher = Agent(
        role="Researcher",
        goal="Find facts about cities",
        backstory="A careful fact finder.",
        tools=[lookup_population],
        llm=llm,
        allow_delegation=False,
        max_iter=3,
    )
    writer = Agent(
        role="Writer",
        goal="Write one sentence from the facts",
        backstory="A concise writer.",
        llm=llm,
        allow_delegation=True,
        max_iter=3,
    )
    research = Task(
        description="Find how many people live in Lisbon.",
        expected_output="The population of Lisbon.",
        agent=researcher,
    )
    write = Task(
        description="Write one sentence about Lisbon's population.",
        expected_output="One sentence.",
        agent=writer,
    )
    crew = Crew(agents=[researcher, writer], tasks=[research, write], process=Process.sequential)
    print(crew.kickoff())
    provider.shutdown()


main()
