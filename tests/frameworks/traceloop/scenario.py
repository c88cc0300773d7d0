"""traceloop-sdk (OpenLLMetry): a trip-booking workflow where a planner agent calls one tool and
a booker agent runs one task, with the @workflow/@agent/@task/@tool decorators. Configured as
traceloop's docs say for another OTLP backend: Traceloop.init(api_endpoint=..., headers=...);
"simple" is `disable_batch=True` (its advice for local runs), "batched" its default.
"""

from __future__ import annotations

import json
import os

from openai import OpenAI
from scenario_common import LLM_BASE_URL, MODE, MODEL
from traceloop.sdk import Traceloop
from traceloop.sdk.decorators import agent, task, tool, workflow

SEARCH_FLIGHTS = {
    "type": "function",
    "function": {
        "name": "search_flights",
        "description": "Flights to a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def headers() -> dict[str, str]:
    pairs = os.environ.get("OTEL_EXPORTER_OTLP_HEADERS", "")
    return dict(pair.split("=", 1) for pair in pairs.split(",") if "=" in pair)


Traceloop.init(
    app_name="trip-booking-app",
    api_endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
    headers=headers(),
    disable_batch=MODE == "simple",
    telemetry_enabled=False,
)
client = OpenAI(base_url=LLM_BASE_URL)


@tool(name="search_flights")
def search_flights(city: str) -> str:
    return f"TP123 to {city} at 09:00, 120 EUR"


@agent(name="planner")
def planner(question: str) -> str:
    messages = [{"role": "user", "content": question}]
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[SEARCH_FLIGHTS])
    call = first.choices[0].message.tool_calls[0]
    found = search_flights(**json.loads(call.function.arguments))
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": found},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages)
    return second.choices[0].message.content or ""


@task(name="book")
def book(plan: str) -> str:
    answer = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": f"Book this: {plan}"}]
    )
    return answer.choices[0].message.content or ""


@agent(name="booker")
def booker(plan: str) -> str:
    return book(plan)


@workflow(name="trip-booking")
def trip() -> str:
    return booker(planner("Find me a flight to Lisbon."))


print(trip())
