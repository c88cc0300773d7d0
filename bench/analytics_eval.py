"""An evaluation set for the anomaly engine that it was never tuned on: a customer-support desk.

A router agent (gpt-4o-mini) hands each conversation to one of three specialists (billing and
shipping on claude-3-5-sonnet, tech_support on gpt-4o) that call their tools; from day 9 a new
returns agent (claude-3-5-haiku) takes some of the traffic, and every night from 01:00 to 04:00 a
planned batch job (nightly_digest) is busy and slow. Fourteen days from a Monday, at low (~150
sessions a weekday) and medium (~1,200) traffic, with a diurnal curve and a weekend dip. The
generator is independent of analytics/synthetic.py and of bench/analytics_bench.py.

Six incidents of several hours are injected (see INCIDENTS): a tool latency spike, one agent's
tool failing half its calls for a working day, a model's tokens (so cost) exploding for a day,
tool loops in a few sessions, ping-pong between two agents sent as messages, a model slowing
down on a Sunday evening. The healthy look-alikes (weekend dip, nightly batch, new agent) must
raise nothing.

Path: OpenTelemetry SDK spans (content-free GenAI semconv: tokens and finish reasons, no
prompts or completions; tool call arguments recorded; messaging spans between agents) encoded by
the OTLP exporter's own encoder into protobuf and POSTed to /v1/traces through Django's test
client (the real view, parser and save_records, no HTTP server), hour by hour in time order;
then the live analytics path with a simulated clock: the summary sweep (summaries and failure
detectors) after every hour and the project refresh (claim_refresh, refresh_project) every
REFRESH_HOURS. Flags are read back from the models. Scores per traffic level: incidents found
(recall), incident precision (a flag grouped into the right incident counts right, an ungrouped
duplicate counts false), session-flag precision and per-detector figures, beside a
static-threshold baseline judged hourly on the same rollups.

    bash bench/run_analytics_eval.sh                  # both levels
    bash bench/run_analytics_eval.sh --levels low
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 9, tzinfo=UTC)  # a Monday
DAYS = 14
HOUR = timedelta(hours=1)
REFRESH_HOURS = 3
LEVELS = {"low": 150, "medium": 1200}  # sessions on a weekday
WEEKEND_FACTOR = 0.35
# Share of a day's sessions by UTC hour: a working-day curve with a quiet night.
DIURNAL = [1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 9, 8, 8, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1]
NIGHTLY_SESSIONS = {"low": 30, "medium": 180}  # the batch job, 01:00 to 04:00 every night
NEW_AGENT_DAY = 9
SERVICE = "support-desk"


@dataclass(frozen=True)
class Incident:
    """One injected cause: its window, the subjects a correct flag may name, and whether it is
    seen in whole sessions (session detectors) rather than in a metric."""

    name: str
    start: datetime
    end: datetime
    entities: frozenset[str]
    detector: str = ""  # the session detector that should flag its sessions


def _at(day: int, hour: int) -> datetime:
    return START + timedelta(days=day, hours=hour)


INCIDENTS = (
    Incident(
        "kb_search latency x6 (Thu 13-19 h)",
        _at(3, 13),
        _at(3, 19),
        frozenset({"tool=kb_search", "agent=tech_support"}),
    ),
    Incident(
        "gpt-4o-mini latency x4 (Sun 18-24 h)",
        _at(6, 18),
        _at(7, 0),
        frozenset({"model=gpt-4o-mini", "agent=router"}),
    ),
    Incident(
        "refund_payment fails half its calls (Tue 9-17 h)",
        _at(8, 9),
        _at(8, 17),
        frozenset({"tool=refund_payment", "agent=billing"}),
    ),
    Incident(
        "gpt-4o tokens x5 (all Thu)",
        _at(10, 0),
        _at(11, 0),
        frozenset({"model=gpt-4o", "agent=tech_support", "project="}),
    ),
    Incident(
        "track_package loops (Fri 10-16 h)",
        _at(11, 10),
        _at(11, 16),
        frozenset({"tool=track_package", "agent=shipping"}),
        detector="tool_loop",
    ),
    Incident(
        "billing/shipping ping-pong (Sat 11-17 h)",
        _at(12, 11),
        _at(12, 17),
        frozenset({"agent=billing", "agent=shipping"}),
        detector="ping_pong",
    ),
)
SESSION_INCIDENT_COUNT = {"low": 4, "medium": 6}  # sessions of a loop or ping-pong incident


# --- The workload ------------------------------------------------------------------------------


@dataclass
class Call:
    kind: str  # llm, tool, message
    agent: str
    name: str  # model, tool or receiving agent
    start_ms: float
    duration_ms: float
    input_tokens: int = 0
    output_tokens: int = 0
    failed: bool = False
    arguments: str = ""


@dataclass
class Plan:
    session_id: str
    started_at: datetime
    specialist: str
    calls: list[Call] = field(default_factory=list)
    incident: str = ""  # the session-level incident it belongs to


SPECIALISTS = {  # agent: (model, tools, share of routed traffic)
    "billing": ("claude-3-5-sonnet", ("lookup_order", "refund_payment"), 0.35),
    "shipping": ("claude-3-5-sonnet", ("lookup_order", "track_package"), 0.4),
    "tech_support": ("gpt-4o", ("kb_search", "create_ticket"), 0.25),
}
RETURNS = ("claude-3-5-haiku", ("lookup_order", "create_return_label"), 0.15)
TOOL_MS = {
    "lookup_order": 300,
    "refund_payment": 800,
    "track_package": 500,
    "kb_search": 600,
    "create_ticket": 400,
    "create_return_label": 450,
    "export_report": 9000,
}
TOOL_ERROR_RATE = 0.015
LLM_ERROR_RATE = 0.005


class Workload:
    """Draws sessions hour by hour, injecting INCIDENTS. Deterministic for a seed."""

    def __init__(self, level: str, seed: int) -> None:
        self.level = level
        self.rng = random.Random(seed)
        self.daily = LEVELS[level]
        self.serial = 0
        self.session_incidents = self._session_incident_slots()

    def _session_incident_slots(self) -> dict[datetime, list[str]]:
        slots: dict[datetime, list[str]] = {}
        for incident in INCIDENTS:
            if not incident.detector:
                continue
            hours = int((incident.end - incident.start) / HOUR)
            for i in range(SESSION_INCIDENT_COUNT[self.level]):
                hour = incident.start + HOUR * (i * hours // SESSION_INCIDENT_COUNT[self.level])
                slots.setdefault(hour, []).append(incident.detector)
        return slots

    def hour(self, at: datetime) -> list[Plan]:
        weekend = at.weekday() >= 5
        mean = self.daily * DIURNAL[at.hour] / sum(DIURNAL) * (WEEKEND_FACTOR if weekend else 1)
        plans = [self._session(at, "") for _ in range(self._poisson(mean))]
        if 1 <= at.hour < 4:
            nightly = NIGHTLY_SESSIONS[self.level] / 3
            plans += [self._nightly(at) for _ in range(self._poisson(nightly))]
        plans += [self._session(at, kind) for kind in self.session_incidents.get(at, [])]
        return plans

    def _poisson(self, mean: float) -> int:
        # Knuth's method is fine for these means (below 200); split larger ones.
        if mean > 60:
            return sum(self._poisson(mean / 4) for _ in range(4))
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _id(self) -> str:
        self.serial += 1
        return f"{self.level}-{self.serial:06d}"

    def _specialist(self, at: datetime, kind: str) -> str:
        if kind == "tool_loop":
            return "shipping"
        if kind == "ping_pong":
            return "billing"
        choices = dict(SPECIALISTS)
        if at >= START + timedelta(days=NEW_AGENT_DAY):
            choices["returns"] = RETURNS
        agents = list(choices)
        return self.rng.choices(agents, weights=[choices[a][2] for a in agents])[0]

    def _llm(self, agent: str, model: str, at: datetime, t: float, tokens: tuple[int, int]) -> Call:
        rng = self.rng
        prompt = int(tokens[0] * rng.uniform(0.7, 1.3))
        output = int(tokens[1] * rng.uniform(0.6, 1.4))
        if model == "gpt-4o" and _in(INCIDENTS[3], at):
            prompt, output = prompt * 4, output * 8
        duration = (250 + 12 * output) * rng.lognormvariate(0, 0.25)
        if model == "gpt-4o-mini" and _in(INCIDENTS[1], at):
            duration *= 4
        failed = rng.random() < LLM_ERROR_RATE
        return Call("llm", agent, model, t, duration, prompt, 0 if failed else output, failed)

    def _tool(self, agent: str, tool: str, at: datetime, t: float, arguments: str = "") -> Call:
        rng = self.rng
        duration = TOOL_MS[tool] * rng.lognormvariate(0, 0.3)
        if tool == "kb_search" and _in(INCIDENTS[0], at):
            duration *= 6
        error_rate = TOOL_ERROR_RATE
        if tool == "refund_payment" and _in(INCIDENTS[2], at):
            error_rate = 0.5
        failed = rng.random() < error_rate
        arguments = arguments or f'{{"ref": "{rng.randrange(10**9)}"}}'
        return Call("tool", agent, tool, t, duration, failed=failed, arguments=arguments)

    def _session(self, hour: datetime, kind: str) -> Plan:
        rng = self.rng
        at = hour + timedelta(seconds=rng.uniform(0, 3300))
        specialist = self._specialist(at, kind)
        plan = Plan(self._id(), at, specialist, incident=kind)
        t = 0.0
        route = self._llm("router", "gpt-4o-mini", at, t, (350, 15))
        plan.calls.append(route)
        t += route.duration_ms + 20
        plan.calls.append(Call("message", "router", specialist, t, 15))
        t += 40
        model, tools = (SPECIALISTS.get(specialist) or RETURNS)[:2]
        for _ in range(rng.randint(1, 2)):
            think = self._llm(specialist, model, at, t, (900, 120))
            plan.calls.append(think)
            t += think.duration_ms + 10
            for tool in rng.sample(tools, rng.randint(1, len(tools))):
                call = self._tool(specialist, tool, at, t)
                plan.calls.append(call)
                t += call.duration_ms + 10
        if kind == "tool_loop":
            for _ in range(12):
                call = self._tool(specialist, "track_package", at, t, '{"tracking": "ZX-4471"}')
                plan.calls.append(call)
                t += call.duration_ms + 10
        if kind == "ping_pong":
            for i in range(20):
                sender, receiver = (
                    ("billing", "shipping") if i % 2 == 0 else ("shipping", "billing")
                )
                plan.calls.append(Call("message", sender, receiver, t, 15))
                t += rng.uniform(300, 1500)
        answer = self._llm(specialist, model, at, t, (1200, 180))
        answer.failed = False
        answer.output_tokens = max(answer.output_tokens, 1)
        plan.calls.append(answer)
        return plan

    def _nightly(self, hour: datetime) -> Plan:
        """The planned batch job: many slow searches and a big digest, every night."""
        rng = self.rng
        at = hour + timedelta(seconds=rng.uniform(0, 3300))
        plan = Plan(self._id(), at, "nightly_digest")
        t = 0.0
        for _ in range(rng.randint(6, 12)):
            call = self._tool("nightly_digest", "kb_search", at, t)
            call.duration_ms *= 3  # big queries: slow, and planned
            plan.calls.append(call)
            t += call.duration_ms + 5
        digest = self._llm("nightly_digest", "claude-3-5-sonnet", at, t, (6000, 900))
        plan.calls.append(digest)
        t += digest.duration_ms
        plan.calls.append(self._tool("nightly_digest", "export_report", at, t))
        return plan


def _in(incident: Incident, at: datetime) -> bool:
    return incident.start <= at < incident.end


# --- OTLP through the SDK ----------------------------------------------------------------------


class Encoder:
    """Spans made with the OpenTelemetry SDK (explicit start and end times) and encoded with the
    OTLP exporter's own protobuf encoder: the bytes an OTLPSpanExporter would POST."""

    def __init__(self) -> None:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        self.exporter = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("support-desk.agents")

    def session(self, plan: Plan) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Link, SpanKind, Status, StatusCode

        base = int(plan.started_at.timestamp() * 1e9)
        end = base + int(max(c.start_ms + c.duration_ms for c in plan.calls) * 1e6) + 10**6
        root_agent = "nightly_digest" if plan.specialist == "nightly_digest" else "router"
        root = self.tracer.start_span(
            f"invoke_agent {root_agent}",
            start_time=base,
            attributes={
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.agent.name": root_agent,
                "gen_ai.conversation.id": plan.session_id,
            },
        )
        agents = {root_agent: root}
        context = trace.set_span_in_context(root)
        serial = 0
        for call in plan.calls:
            serial += 1
            start = base + int(call.start_ms * 1e6)
            stop = start + int(call.duration_ms * 1e6)
            parent = agents.get(call.agent)
            if parent is None:
                parent = self.tracer.start_span(
                    f"invoke_agent {call.agent}",
                    context=context,
                    start_time=start,
                    attributes={
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": call.agent,
                    },
                )
                agents[call.agent] = parent
            inside = trace.set_span_in_context(parent)
            if call.kind == "message":
                self._message(plan, call, serial, inside, start, stop, Link, SpanKind)
                continue
            if call.kind == "llm":
                name, attributes = (
                    f"chat {call.name}",
                    {
                        "gen_ai.operation.name": "chat",
                        "gen_ai.provider.name": "openai" if "gpt" in call.name else "anthropic",
                        "gen_ai.request.model": call.name,
                        "gen_ai.usage.input_tokens": call.input_tokens,
                        "gen_ai.usage.output_tokens": call.output_tokens,
                        "gen_ai.response.finish_reasons": ["error" if call.failed else "stop"],
                    },
                )
            else:
                name, attributes = (
                    f"execute_tool {call.name}",
                    {
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": call.name,
                        "gen_ai.tool.call.arguments": call.arguments,
                    },
                )
            span = self.tracer.start_span(
                name, context=inside, start_time=start, attributes=attributes, kind=SpanKind.CLIENT
            )
            if call.failed:
                span.set_attribute("error.type", "UpstreamError")
                span.set_status(Status(StatusCode.ERROR, "upstream error"))
            span.end(end_time=stop)
        for span in agents.values():
            if span is not root:
                span.end(end_time=end - 10**5)
        root.end(end_time=end)

    def _message(
        self,
        plan: Plan,
        call: Call,
        serial: int,
        inside: Any,
        start: int,
        stop: int,
        link: Any,
        kind: Any,
    ) -> None:
        """A send span of the sender and a process span of the receiver, linked: a message."""
        from opentelemetry import trace

        message_id = f"{plan.session_id}-m{serial}"
        send = self.tracer.start_span(
            f"{call.name} send",
            context=inside,
            start_time=start,
            kind=kind.PRODUCER,
            attributes={
                "messaging.system": "support-bus",
                "messaging.operation.type": "send",
                "messaging.destination.name": call.name,
                "messaging.message.id": message_id,
                "gen_ai.agent.name": call.agent,
            },
        )
        send.end(end_time=stop)
        process = self.tracer.start_span(
            f"{call.name} process",
            context=trace.set_span_in_context(send),
            start_time=stop,
            kind=kind.CONSUMER,
            links=[link(send.get_span_context())],
            attributes={
                "messaging.system": "support-bus",
                "messaging.operation.type": "process",
                "messaging.destination.name": call.name,
                "messaging.message.id": message_id,
                "gen_ai.agent.name": call.name,
            },
        )
        process.end(end_time=stop + 2 * 10**6)

    def drain(self) -> tuple[bytes, int]:
        from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

        spans = self.exporter.get_finished_spans()
        self.exporter.clear()
        return encode_spans(spans).SerializeToString(), len(spans)


# --- Scoring (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reported:
    """A flag or incident as the user sees it: its window, the subjects it names, and what
    kind of detector raised it."""

    detector: str
    start: datetime
    end: datetime
    entities: frozenset[str]
    explained: bool = True


# A reported window may start an hour early and run a few hours late (a merged tail).
EARLY, LATE = timedelta(hours=1), timedelta(hours=3)


def matching_incident(reported: Reported) -> int | None:
    for i, incident in enumerate(INCIDENTS):
        overlaps = reported.start < incident.end + LATE and reported.end > incident.start - EARLY
        if overlaps and reported.entities & incident.entities:
            return i
    return None


@dataclass
class Score:
    found: set[int] = field(default_factory=set)
    right: int = 0
    wrong: int = 0
    explained: int = 0
    by_detector: dict[str, list[int]] = field(default_factory=dict)  # detector: [right, all]

    @property
    def recall(self) -> float:
        return len(self.found) / len(INCIDENTS)

    @property
    def precision(self) -> float:
        return self.right / max(1, self.right + self.wrong)


def score_incidents(reported: list[Reported], session_found: set[int]) -> Score:
    """Each injected incident may be matched by one reported item; the first is right, every
    further one is a duplicate and counts false, as does anything matching no incident.
    session_found: incidents found through their sessions' flags."""
    score = Score(found=set(session_found))
    for item in sorted(reported, key=lambda r: r.start):
        i = matching_incident(item)
        counts = score.by_detector.setdefault(item.detector, [0, 0])
        counts[1] += 1
        if i is not None:
            counts[0] += 1
        if i is not None and i not in score.found - session_found:
            score.found.add(i)
            score.right += 1
            score.explained += int(item.explained)
        else:
            score.wrong += 1
    return score


def score_sessions(
    flags: list[tuple[str, str]], truth: dict[str, set[str]], incident_sessions: dict[str, int]
) -> tuple[float, int, set[int], dict[str, list[int]]]:
    """Session-flag precision, flag count, incidents whose sessions were (80 %) flagged, and
    per detector [right, all]. flags: (session id, detector); truth: session id -> the
    detectors that are right about it."""
    by_detector: dict[str, list[int]] = {}
    right = 0
    hit: dict[int, int] = {}
    for session, detector in flags:
        ok = detector in truth.get(session, ())
        right += ok
        counts = by_detector.setdefault(detector, [0, 0])
        counts[0] += ok
        counts[1] += 1
        if ok and session in incident_sessions:
            i = incident_sessions[session]
            hit[i] = hit.get(i, 0) + 1
    totals: dict[int, int] = {}
    for i in incident_sessions.values():
        totals[i] = totals.get(i, 0) + 1
    found = {i for i, n in hit.items() if n >= 0.8 * totals[i]}
    return right / max(1, len(flags)), len(flags), found, by_detector


# --- The static-threshold baseline (pure) ------------------------------------------------------


def static_baseline(rollups: Any) -> list[Reported]:
    """What a user's fixed alert rules would say, judged hour by hour: p95 latency or tokens per
    call above twice the subject's median hour over the whole period, an error rate above 5 %,
    on hours with at least 3 calls; consecutive hours of one rule are one alert."""
    import pandas as pd

    from analytics.anomalies import SERIES
    from analytics.anomalies.baselines import _hourly_values

    out: list[Reported] = []
    rollups = rollups.assign(bucket=pd.to_datetime(rollups["bucket"], utc=True))
    for series in SERIES:
        rows = rollups[rollups["kind"].isin(series.kinds)]
        column = None if series.subject_type == "project" else series.subject_type
        rows = rows.assign(subject=rows[column] if column else "")
        if column:
            rows = rows[rows["subject"] != ""]
        if not len(rows):
            continue
        values = _hourly_values(rows, series.metric)
        for subject, group in values.groupby("subject"):
            group = group[group["count"] >= 3].sort_values("bucket")
            if series.metric == "error_rate":
                bad = group[group["value"] > 0.05]
            else:
                bad = group[group["value"] > 2 * group["value"].median()]
            entity = f"{series.subject_type}={subject}"
            for start, end in _runs(list(bad["bucket"])):
                out.append(Reported(series.metric, start, end, frozenset({entity})))
    return out


def _runs(hours: list[Any]) -> Iterator[tuple[datetime, datetime]]:
    run: list[Any] = []
    for hour in hours:
        if run and hour - run[-1] > HOUR:
            yield run[0].to_pydatetime(), run[-1].to_pydatetime() + HOUR
            run = []
        run.append(hour)
    if run:
        yield run[0].to_pydatetime(), run[-1].to_pydatetime() + HOUR


def static_session_flags(plans: list[Plan]) -> list[tuple[str, str]]:
    """Fixed session rules: ten calls of one tool is a loop, ten messages is ping-pong."""
    flags = []
    for plan in plans:
        tools: dict[str, int] = {}
        for call in plan.calls:
            if call.kind == "tool":
                tools[call.name] = tools.get(call.name, 0) + 1
        if tools and max(tools.values()) >= 10:
            flags.append((plan.session_id, "tool_loop"))
        if sum(call.kind == "message" for call in plan.calls) >= 10:
            flags.append((plan.session_id, "ping_pong"))
    return flags


# --- The run -----------------------------------------------------------------------------------


def setup_django() -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def ingest_and_judge(level: str, seed: int) -> tuple[Any, list[Plan], dict[str, float]]:
    """Send the level's fourteen days hour by hour and run the live analytics after each hour
    (summaries, detectors) and every REFRESH_HOURS (refresh) with the clock at that hour."""
    from django.test import Client

    from analytics.refresh import refresh_project
    from analytics.store import claim_refresh
    from analytics.tasks import sweep_stale_summaries_task
    from ingest.models import ApiKey, Project

    project = Project.objects.create(name=f"Support desk ({level})", slug=f"eval-{level}")
    _, key = ApiKey.generate(project)
    client = Client()
    workload, encoder = Workload(level, seed), Encoder()
    plans: list[Plan] = []
    timings = {"ingest": 0.0, "analytics": 0.0, "spans": 0.0}
    for hour_index in range(DAYS * 24):
        at = START + HOUR * hour_index
        hour_plans = workload.hour(at)
        plans += hour_plans
        started = cpu_seconds()
        for i in range(0, len(hour_plans), 100):
            for plan in hour_plans[i : i + 100]:
                encoder.session(plan)
            body, spans = encoder.drain()
            timings["spans"] += spans
            answer = client.post(
                "/v1/traces",
                body,
                content_type="application/x-protobuf",
                headers={"X-API-Key": key},
                HTTP_HOST="localhost",
            )
            assert answer.status_code == 200, answer.content[:300]
        middle = cpu_seconds()
        sweep_stale_summaries_task()
        now = at + HOUR
        if (hour_index + 1) % REFRESH_HOURS == 0:
            since = claim_refresh(project.pk)
            if since is not None:
                refresh_project(project.pk, since=since, now=now)
        timings["ingest"] += middle - started
        timings["analytics"] += cpu_seconds() - middle
    return project, plans, timings


def engine_reported(project: Any, unit: str) -> list[Reported]:
    """The engine's incidents, or (unit "flags") its flags one by one, as before grouping."""
    from analytics.models import Anomaly, Incident

    if unit == "flags":
        return [_anomaly_reported(a) for a in Anomaly.objects.filter(project=project)]
    reported = []
    for incident in Incident.objects.filter(project=project).prefetch_related("anomalies"):
        entities: set[str] = set()
        for anomaly in incident.anomalies.all():
            entities |= _anomaly_reported(anomaly).entities
        reported.append(
            Reported(
                incident.metric,
                incident.window_start,
                incident.window_end,
                frozenset(entities),
                explained=_is_explained(incident),
            )
        )
    return reported


def _anomaly_reported(anomaly: Any) -> Reported:
    entities = {f"{anomaly.subject_type}={anomaly.subject}"}
    if anomaly.subject_type == "edge":
        entities |= {f"agent={a.strip()}" for a in anomaly.subject.split("\u2192")}
    if anomaly.top_dimension:
        entities.add(anomaly.top_dimension)
    return Reported(
        anomaly.metric,
        anomaly.window_start,
        anomaly.window_end,
        frozenset(entities),
        explained=_is_explained(anomaly),
    )


def _is_explained(item: Any) -> bool:
    """The stored sentence states the observed value and the baseline and names the top
    dimension (or, when none stands out, the subject); an incident's also states its window
    ("from Thu 12 Nov 13:00 to 19:00 UTC (6 h)"), a flag's window is its own fields."""
    from analytics.anomalies import format_value
    from analytics.models import Incident as StoredIncident

    text = item.explanation or ""
    dimension = item.top_dimension.partition("=")[2] or item.subject
    has_window = item.window_end > item.window_start
    if isinstance(item, StoredIncident):
        has_window = has_window and f"from {item.window_start:%a %d %b %H:%M} to " in text
    return (
        has_window
        and format_value(item.metric, item.observed) in text
        and format_value(item.metric, item.baseline) in text
        and dimension in text
    )


def evaluate(level: str, seed: int, unit: str) -> list[str]:
    from analytics.models import SessionFlag
    from analytics.queries import rollup_frame

    load = os.getloadavg()[0]
    wall = time.perf_counter()
    project, plans, timings = ingest_and_judge(level, seed)
    wall = time.perf_counter() - wall
    truth = {p.session_id: {p.incident} for p in plans if p.incident}
    for plan in plans:  # every LLM call failed: the session really has no final answer
        llm = [c for c in plan.calls if c.kind == "llm"]
        if llm and all(c.failed for c in llm):
            truth.setdefault(plan.session_id, set()).add("no_final_answer")
    incident_of = {
        p.session_id: next(i for i, inc in enumerate(INCIDENTS) if inc.detector == p.incident)
        for p in plans
        if p.incident
    }
    flags = list(
        SessionFlag.objects.filter(project=project).values_list("session__external_id", "detector")
    )
    reported = engine_reported(project, unit)
    precision, count, found, detectors = score_sessions(flags, truth, incident_of)
    engine = score_incidents(reported, found)
    rollups = rollup_frame(project.pk, granularity="hour", since=START, until=_at(DAYS, 0))
    static_flags = static_session_flags(plans)
    s_precision, s_count, s_found, s_detectors = score_sessions(static_flags, truth, incident_of)
    static = score_incidents(static_baseline(rollups), s_found)
    weekday = sum(1 for p in plans if p.started_at.weekday() < 5) / 10
    lines = [
        f"## {level}: {len(plans):,} sessions ({weekday:,.0f} a weekday incl. the nightly job), "
        f"{int(timings['spans']):,} spans; ingest {timings['ingest']:.0f} s CPU, analytics "
        f"{timings['analytics']:.0f} s CPU, {wall:.0f} s wall at load {load:.1f}",
        "",
        "| | engine | static baseline |",
        "| --- | --- | --- |",
        f"| incidents found (recall) | {len(engine.found)} of {len(INCIDENTS)} "
        f"({engine.recall:.2f}) | {len(static.found)} of {len(INCIDENTS)} ({static.recall:.2f}) |",
        f"| incident precision ({unit} / alerts) | {engine.right} of {engine.right + engine.wrong}"
        f" ({engine.precision:.2f}) | {static.right} of {static.right + static.wrong} "
        f"({static.precision:.2f}) |",
        f"| incidents explained | {engine.explained} of {engine.right} | - |",
        f"| session-flag precision | {precision:.2f} of {count:,} flags | "
        f"{s_precision:.2f} of {s_count:,} flags |",
    ]
    for name in sorted(set(engine.by_detector) | set(static.by_detector)):
        e, s = engine.by_detector.get(name, [0, 0]), static.by_detector.get(name, [0, 0])
        lines.append(f"| {name}: right of all | {e[0]} of {e[1]} | {s[0]} of {s[1]} |")
    for name in sorted(set(detectors) | set(s_detectors)):
        e, s = detectors.get(name, [0, 0]), s_detectors.get(name, [0, 0])
        lines.append(f"| session {name}: right of all | {e[0]} of {e[1]} | {s[0]} of {s[1]} |")
    missed = [INCIDENTS[i].name for i in range(len(INCIDENTS)) if i not in engine.found]
    lines.append(f"\nengine missed: {', '.join(missed) or 'nothing'}")
    lines += [
        f"  {r.detector} {r.start:%a %d %H:%M}-{r.end:%H:%M} {sorted(r.entities)}"
        + ("" if matching_incident(r) is not None else "  (no incident)")
        for r in sorted(reported, key=lambda r: r.start)
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", default="low,medium")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--unit", choices=("incidents", "flags"), default="incidents", help="what counts as one"
    )
    args = parser.parse_args()
    setup_django()
    print(
        f"date: {datetime.now(UTC):%Y-%m-%dT%H:%MZ}, {os.cpu_count()} cores, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    for level in args.levels.split(","):
        print("\n".join(evaluate(level, args.seed, args.unit)), flush=True)


if __name__ == "__main__":
    main()
