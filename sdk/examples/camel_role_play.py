"""A CAMEL-style role play between two agents, recorded with the Observatory SDK.

CAMEL's role-playing society has a task specifier sharpen the user's idea into a task, then an
"AI user" (the instructor) and an "AI assistant" (the doer) take turns: the user gives one
instruction, the assistant answers with a solution, until the user says <CAMEL_TASK_DONE>.
Here the two agents are scripted (no model is called) and talk over a tiny in-process bus whose
first delivery of one message fails, so the recording shows a retry, and whose last message is
dead-lettered, so the dead-letter queue has something to requeue.

Every message is recorded with its lifecycle (created, sent, delivered, received, processed,
failed, retried, dead-lettered), each reply points at the instruction it answers, and the play
is one workflow with a step per turn.

    pip install -e ./sdk
    python sdk/examples/camel_role_play.py --api-key <key> --url http://127.0.0.1:8000

Then open the session's "Message sequence" page, or Workflows.
"""

from __future__ import annotations

import argparse
from collections import deque
from dataclasses import dataclass, field

from observatory_sdk import Client, StepRun, TrackedMessage, WorkflowRun

TASK = "Develop a trading bot for the stock market"
SPECIFIED = (
    "Write a Python bot that watches Apple's price, buys when the 20-day moving average crosses "
    "above the 50-day one, and sells on the reverse cross."
)
TURNS = (
    (
        "Instruction: install and import yfinance and pandas.",
        "import yfinance as yf\nimport pandas as pd",
    ),
    (
        "Instruction: download a year of AAPL daily prices.",
        "prices = yf.download('AAPL', period='1y')",
    ),
    (
        "Instruction: compute the 20- and 50-day moving averages.",
        "prices['ma20'] = prices.Close.rolling(20).mean()",
    ),
    (
        "Instruction: emit buy and sell signals on the crosses.",
        "signals = (prices.ma20 > prices.ma50).diff()",
    ),
)
DONE = "<CAMEL_TASK_DONE>"


class DeliveryError(Exception):
    """The bus could not hand a message to its receiver."""


@dataclass
class Bus:
    """An in-process queue per agent. The first delivery of message number `flaky` fails once."""

    flaky: int = 2
    queues: dict[str, deque[TrackedMessage]] = field(default_factory=dict)
    sent: int = 0

    def publish(self, message: TrackedMessage) -> None:
        self.sent += 1
        if self.sent == self.flaky:
            raise DeliveryError(f"connection to {message.receivers[0]} reset")
        for receiver in message.receivers:
            self.queues.setdefault(receiver, deque()).append(message)
        message.delivered(agent_id="bus")

    def take(self, agent: str) -> TrackedMessage:
        return self.queues[agent].popleft()


def send(bus: Bus, message: TrackedMessage, *, attempts: int = 3) -> None:
    """Send with retries; a message that fails every attempt is dead-lettered."""
    for attempt in range(attempts):
        try:
            with message.sending():
                bus.publish(message)
            return
        except DeliveryError as exc:
            if attempt == attempts - 1:
                message.dead_lettered(exc)
                return
            message.retried()


def turn(
    client: Client, bus: Bus, run: WorkflowRun, session_id: str, number: int, after: StepRun
) -> tuple[StepRun, TrackedMessage]:
    instruction, solution = TURNS[number]
    with run.step(f"turn {number + 1}", agent_id="ai_user", depends_on=[after]) as step:
        ask = client.track_message(
            session_id, "ai_user", ["ai_assistant"], instruction, channel="role-play"
        )
        send(bus, ask)
        received = bus.take("ai_assistant")
        with received.processing("ai_assistant"):
            answer = received.reply(f"Solution: {solution}\nNext request.", channel="role-play")
            answer.created()
        send(bus, answer)
        with bus.take("ai_user").processing("ai_user"):
            step.result = solution.splitlines()[0]
    return step, answer


def role_play(client: Client, session_id: str | None = None) -> str:
    """Record one role play; returns its session id."""
    session_id = client.start_session(
        session_id, name="CAMEL role play: trading bot", tags=["camel"], user_query=TASK
    )
    for agent, role in (
        ("task_specifier", "task specifier"),
        ("ai_user", "stock trader"),
        ("ai_assistant", "Python programmer"),
    ):
        client.agent_created(
            session_id,
            agent,
            agent,
            role=role,
            init_params={"model": "scripted", "role_name": role},
        )
    bus = Bus()
    with client.workflow(session_id, "camel role play") as run:
        with run.step("specify task", agent_id="task_specifier") as specify:
            task = client.track_message(
                session_id,
                "task_specifier",
                ["ai_user", "ai_assistant"],
                SPECIFIED,
                channel="role-play",
            )
            send(bus, task)
            for agent in ("ai_user", "ai_assistant"):
                with bus.take(agent).processing(agent):
                    pass
            specify.result = SPECIFIED[:60]
        step = specify
        for number in range(len(TURNS)):
            step, answer = turn(client, bus, run, session_id, number, step)
        done = answer.reply(DONE, channel="role-play")
        done.created()
        bus.flaky = bus.sent + 1  # the closing message never gets through
        send(bus, done, attempts=1)
        run.result = "task done"
    for agent in ("task_specifier", "ai_user", "ai_assistant"):
        client.agent_terminated(session_id, agent, "role play finished")
    client.end_session(session_id, "success")
    return session_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    args = parser.parse_args()
    with Client(args.api_key, args.url) as client:
        session_id = role_play(client)
    print(f"Recorded session {session_id}: {client.stats}")  # noqa: T201


if __name__ == "__main__":
    main()
