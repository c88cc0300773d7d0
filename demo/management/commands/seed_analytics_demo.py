"""seed_analytics_demo: send a support-bot workload with injected anomalies and failure patterns
through the native ingest API, so a fresh demo has something for the analytics pages to find.

Run after seed_demo (scripts/demo.sh does), then `manage.py recompute_analytics`: the arena of
seed_demo is too sparse per hour for hourly baselines, so this adds a steadier stream of sessions
(agents planner, researcher and writer; tools search, fetch and code) over the same days, with
five injected anomalies (analytics.synthetic) and one session per failure detector. Like
seed_demo it never writes rows itself; the same --seed tells the same story.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics.synthetic import Injection, synthetic_telemetry
from observatory_sdk import Client
from observatory_sdk.records import (
    Record,
    event_record,
    message_record,
    new_id,
    session_end_record,
    session_start_record,
    status_record,
)

QUESTIONS = (
    "Where is my order #{n}?",
    "Can I change the shipping address of order {n}?",
    "The invoice INV-{n} shows the wrong VAT.",
    "My refund for order {n} has not arrived.",
)
ERRORS = {
    "search": ("TimeoutError", "search index timed out after {s:.1f}s (shard {n})"),
    "fetch": ("ConnectionError", "GET https://orders.example.com/api/orders/{n} failed: 503"),
    "code": ("PermissionError", "[Errno 13] Permission denied: '/srv/jobs/{n}/out.json'"),
    "chat": ("RateLimitError", "Error code: 429 - Rate limit reached (request {n})"),
}
# The support bot's new version goes live this long before now (the cohort page's before/after).
RELEASE_AGO = timedelta(days=3)
# The support bot's own model and tool names, so its series do not mix with the arena's.
MODELS = {"gpt-4o": "gpt-4.1", "gpt-4o-mini": "gpt-4.1-mini", "claude": "claude-3-5-haiku"}
TOOLS = {"search": "kb_search", "fetch": "order_api", "code": "run_code"}


def injections(now: datetime) -> tuple[Injection, ...]:
    """Five anomalies on whole hours of the past days, one of each kind the detector knows (in
    analytics.synthetic's names, which _span_records maps to MODELS and TOOLS)."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    return (
        Injection(
            "tool",
            "fetch",
            "latency_p95",
            hour - timedelta(hours=30),
            3,
            5.0,
            via=("agent", "researcher"),
        ),
        Injection("model", "claude", "error_rate", hour - timedelta(days=3, hours=5), 2, 0.5),
        Injection(
            "model", "gpt-4o-mini", "tokens_per_call", hour - timedelta(days=2, hours=8), 2, 3.0
        ),
        Injection("project", "", "cost_per_session", hour - timedelta(days=4, hours=3), 2, 5.0),
        Injection(
            "agent",
            "writer",
            "latency_p95",
            hour - timedelta(days=5, hours=10),
            3,
            4.0,
            via=("model", "gpt-4o"),
        ),
    )


def _error(rng: random.Random, name: str) -> tuple[str, str]:
    error_type, template = ERRORS.get(name, ERRORS["chat"])
    return error_type, template.format(n=rng.randint(1000, 99999), s=rng.uniform(5, 30))


def _span_records(
    rng: random.Random, session_id: str, spans: pd.DataFrame, root: str
) -> Iterator[Record]:
    for span in spans.itertuples(index=False):
        start = span.started_at.to_pydatetime()
        fields: dict[str, Any] = {
            "started_at": start,
            "ended_at": start + timedelta(milliseconds=float(span.duration_ms)),
            "agent_id": span.agent_external_id,
            "status": span.status,
            "parent_span_id": root,
        }
        if span.kind == "llm":
            fields |= {
                "model": MODELS[span.model],
                "prompt_tokens": int(span.prompt_tokens),
                "completion_tokens": int(span.completion_tokens),
                "cost": round(float(span.cost), 6),
                "prompt": [{"role": "user", "content": f"step {rng.random():.6f}"}],
                "completion": {"role": "assistant", "content": "ok"},
            }
        else:
            fields["params"] = {"query": f"order {rng.randint(1000, 99999)}"}
        if span.status == "error":
            fields["error_type"], fields["error_message"] = _error(rng, span.name)
        yield event_record(session_id, span.kind, TOOLS.get(span.name, span.name), **fields)


def session_records(
    rng: random.Random, index: int, session: Any, spans: pd.DataFrame, *, now: datetime
) -> list[Record]:
    """One support session: start, question, an action span holding the calls, answer, end."""
    session_id = new_id()
    started = session.started_at.to_pydatetime()
    is_new = started >= now - RELEASE_AGO
    question = rng.choice(QUESTIONS).format(n=rng.randint(1000, 99999))
    root = new_id()
    end = max([started + timedelta(seconds=60), *(s.to_pydatetime() for s in spans["started_at"])])
    records = [
        session_start_record(
            session_id,
            name=f"Support ticket #{index + 1}",
            tags=["support", "v2" if is_new else "v1"],
            metadata={"agent_version": "1.5" if is_new else "1.4"},
            config={"retries": 2 if is_new else 3},
            user_query=question,
            started_at=started,
        ),
        message_record(session_id, "user", question, at=started),
        event_record(
            session_id,
            "action",
            "handle_ticket",
            span_id=root,
            agent_id="planner",
            started_at=started,
            ended_at=end,
            status="ok",
        ),
        *_span_records(rng, session_id, spans, root),
        message_record(session_id, "assistant", "Here is what I found.", agent_id="writer", at=end),
        session_end_record(session_id, end_state=session.end_state, ended_at=end),
    ]
    return records


class BrokenSessions:
    """Sessions an hour ago that each show one failure pattern, as records."""

    def __init__(self, now: datetime) -> None:
        self.at = now - timedelta(hours=1)
        self.records: list[Record] = []

    def start(self, name: str) -> str:
        sid = new_id()
        self.records.append(
            session_start_record(sid, name=name, tags=["support", "broken"], started_at=self.at)
        )
        self.records.append(message_record(sid, "user", "Help me with order 4711", at=self.at))
        return sid

    def span(self, sid: str, kind: str, name: str, second: float, **fields: Any) -> str:
        span_id = new_id()
        begin = self.at + timedelta(seconds=second)
        self.records.append(
            event_record(
                sid,
                kind,
                name,
                span_id=span_id,
                started_at=begin,
                ended_at=begin + timedelta(milliseconds=300),
                **fields,
            )
        )
        return span_id

    def end(self, sid: str, state: str = "success", *, answer: bool = True) -> None:
        ended = self.at + timedelta(minutes=2)
        if answer:
            self.records.append(message_record(sid, "assistant", "Done.", at=ended))
        self.records.append(session_end_record(sid, end_state=state, ended_at=ended))

    def all(self) -> list[Record]:
        for pattern in (
            self.loop,
            self.repeated_prompt,
            self.ping_pong,
            self.deep,
            self.storm,
            self.no_answer,
            self.retry_storm,
        ):
            pattern()
        return self.records

    def loop(self) -> None:
        sid = self.start("Looping researcher")
        for i in range(6):
            self.span(
                sid, "tool", "kb_search", i, agent_id="researcher", params={"q": "order 4711"}
            )
        self.end(sid)

    def repeated_prompt(self) -> None:
        sid = self.start("Thinking in circles")
        prompt = [{"role": "user", "content": "What should I do next?"}]
        for i in range(5):
            self.span(sid, "llm", "chat", i, agent_id="planner", model="gpt-4.1", prompt=prompt)
        self.end(sid)

    def ping_pong(self) -> None:
        sid = self.start("Planner and writer ping-pong")
        for i in range(12):
            self.span(sid, "action", "hand_off", i, agent_id="planner" if i % 2 else "writer")
        self.end(sid)

    def deep(self) -> None:
        sid = self.start("Runaway delegation")
        parent = ""
        for i in range(10):
            parent = self.span(
                sid, "action", "delegate", i, agent_id=f"sub-agent-{i}", parent_span_id=parent
            )
        self.end(sid)

    def storm(self) -> None:
        sid = self.start("Status storm")
        for i in range(60):
            at = self.at + timedelta(milliseconds=80 * i)
            self.records.append(status_record(sid, "agent", f"Still working ({i})", at=at))
        self.end(sid)

    def no_answer(self) -> None:
        sid = self.start("Gave up without an answer")
        self.span(sid, "tool", "order_api", 1, agent_id="researcher")
        self.end(sid, "fail", answer=False)

    def retry_storm(self) -> None:
        sid = self.start("Retry storm on fetch")
        error_type, message = ERRORS["fetch"]
        for i in range(4):
            self.span(
                sid,
                "tool",
                "order_api",
                i,
                agent_id="researcher",
                status="error",
                error_type=error_type,
                error_message=message.format(n=4711),
            )
        self.end(sid, "fail")


class Command(BaseCommand):
    help = "Send a support workload with injected anomalies and failure patterns (after seed_demo)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="Server base URL.")
        parser.add_argument("--api-key", required=True, help="A project API key.")
        parser.add_argument("--days", type=int, default=15, help="Days of history.")
        parser.add_argument("--sessions-per-hour", type=float, default=5.0)
        parser.add_argument("--seed", type=int, default=11, help="Same seed, same story.")

    def handle(self, *args: Any, **options: Any) -> None:
        now = datetime.now(UTC)
        data = synthetic_telemetry(
            now=now,
            days=options["days"],
            sessions_per_hour=options["sessions_per_hour"],
            injections=injections(now),
            seed=options["seed"],
        )
        rng = random.Random(options["seed"])
        client = Client(
            options["api_key"],
            options["url"],
            batch_size=1000,
            flush_interval=0.5,
            max_retries=3,
            backoff_max=5,
        )
        groups = dict(list(data.spans.groupby("session_index")))
        empty = data.spans.iloc[0:0]
        try:
            for index, session in enumerate(
                tqdm(
                    list(data.sessions.itertuples(index=False)),
                    desc="Support sessions",
                    unit="session",
                    disable=None,
                )
            ):
                for record in session_records(
                    rng, index, session, groups.get(index, empty), now=now
                ):
                    client.record(record)
                if client.stats.failed_batches:
                    raise CommandError(f"Could not send: {client.stats.last_error}")
            for record in BrokenSessions(now).all():
                client.record(record)
        finally:
            client.close(timeout=120)
        stats = client.stats
        self.stdout.write(
            f"Seeded {len(data.sessions)} support sessions with {len(data.injections)} injected "
            f"anomalies and 7 failure patterns: {stats.sent} records accepted, "
            f"{stats.rejected} rejected."
        )
        if stats.rejected or stats.failed_batches or stats.dropped:
            raise CommandError(f"The server did not take everything. {stats.last_error}".strip())
