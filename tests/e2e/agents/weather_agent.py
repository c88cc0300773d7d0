"""A small agent instrumented with the real agentops SDK, configured as a user of ours would.

Run it with the agentops environment (tests/e2e/agents/requirements.txt), never with the server's:

    .venv/agentops/bin/python tests/e2e/agents/weather_agent.py --server http://127.0.0.1:8000 \
        --api-key <key> --llm-url http://127.0.0.1:9000 --city Lisbon

It records two traces. "weather-run" (ended "Success"): an @agent class whose @operation asks the
model with a tool offered, runs the @tool(cost=0.01) the model picked, whose @task streams a
summary, then calls a @tool that raises, and print()s along the way (agentops uploads the printed
lines when the first trace ends). "weather-retry" (ended "Error"): the forecast tool fails for an
unknown place. The OpenAI client talks to --llm-url, an OpenAI-compatible server.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

import agentops
from agentops.sdk.decorators import agent, operation, task, tool
from openai import OpenAI

FORECASTS = {
    "Lisbon": {"forecast": "sunny", "temp_c": 21},
    "Paris": {"forecast": "light rain", "temp_c": 14},
    "Oslo": {"forecast": "snow showers", "temp_c": -3},
    "Cairo": {"forecast": "hot and dry", "temp_c": 34},
    "Lima": {"forecast": "overcast", "temp_c": 18},
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Today's forecast for a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "City name"}},
            "required": ["city"],
        },
    },
}
MODEL = "gpt-4o-mini"


@tool(cost=0.01)
def get_weather(city: str) -> dict[str, Any]:
    if city not in FORECASTS:
        raise LookupError(f"no forecast for {city}")
    return {"city": city, **FORECASTS[city]}


@tool(cost=0.01)
def search_events(query: str) -> list[str]:
    raise ConnectionError(f"search index offline while looking up {query!r}")


@agent(name="WeatherAgent")
class WeatherAgent:
    def __init__(self, llm: OpenAI, city: str) -> None:
        self.llm = llm
        self.city = city
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": "You are a weather assistant. Use the tools."},
            {"role": "user", "content": f"What should I wear in {city} today?"},
        ]

    @operation
    def plan(self) -> dict[str, Any]:
        """Ask the model, with the forecast tool offered, and run the call it asks for."""
        answer = self.llm.chat.completions.create(
            model=MODEL,
            messages=self.messages,
            tools=[WEATHER_TOOL],
            temperature=0.2,
            max_tokens=128,
        )
        call = answer.choices[0].message.tool_calls[0]
        forecast = get_weather(**json.loads(call.function.arguments))
        self.messages += [
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": json.dumps(forecast)},
        ]
        return forecast

    @task
    def summarize(self) -> str:
        """Stream the model's answer now that it has the tool result."""
        stream = self.llm.chat.completions.create(model=MODEL, messages=self.messages, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def wait_for_token(timeout: float) -> None:
    """Wait for the bearer token agentops fetches in the background (a long-running agent has it
    long before its first export; a short script may not: agentops-protocol.md section 3)."""
    deadline = time.monotonic() + timeout
    while agentops.get_client().get_current_jwt() is None:
        if time.monotonic() > deadline:
            sys.exit(f"no agentops token from the server within {timeout:.0f} s")
        time.sleep(0.05)


def weather_run(llm: OpenAI, city: str) -> None:
    trace = agentops.start_trace("weather-run", tags=["weather", city.lower()])
    print(f"agent starting: weather for {city}")  # noqa: T201 - uploaded by agentops
    weather_agent = WeatherAgent(llm, city)
    weather_agent.plan()
    summary = weather_agent.summarize()
    try:
        search_events(f"events in {city}")
    except ConnectionError as exc:
        print(f"event search failed: {exc}")  # noqa: T201
    print(f"answer: {summary}")  # noqa: T201
    # An @agent class's span ends when the instance is collected: end it inside the trace.
    del weather_agent
    gc.collect()
    agentops.end_trace(trace, "Success")


def weather_retry(city: str) -> None:
    trace = agentops.start_trace("weather-retry", tags=["weather", "retry"])
    try:
        get_weather(city)
    except LookupError:
        agentops.end_trace(trace, "Error")
        return
    agentops.end_trace(trace, "Success")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="Observatory base URL")
    parser.add_argument("--api-key", required=True, help="Project API key")
    parser.add_argument("--llm-url", required=True, help="OpenAI-compatible server base URL")
    parser.add_argument("--city", default="Lisbon", choices=sorted(FORECASTS))
    parser.add_argument(
        "--wait-for-token",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="Wait up to this long for the agentops token before starting (0: do not wait)",
    )
    args = parser.parse_args(argv)
    agentops.init(
        api_key=args.api_key,
        endpoint=args.server,
        exporter_endpoint=f"{args.server}/v1/traces",
        app_url=args.server,
        auto_start_session=False,
    )
    if args.wait_for_token:
        wait_for_token(args.wait_for_token)
    llm = OpenAI(api_key="sk-fake-key-for-a-local-server", base_url=f"{args.llm_url}/v1")
    weather_run(llm, args.city)
    weather_retry("Atlantis")


if __name__ == "__main__":
    main()
