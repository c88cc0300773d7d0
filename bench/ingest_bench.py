"""Load generator for the native ingest endpoint (docs/ingest-api.md): prints throughput figures.

Sends session.start records first, then `--events` realistic `event` records (llm/tool/action spans
with tokens, cost, model, parent spans and ~300-byte payloads) in batches of `--batch`, from
`--concurrency` threads that each keep one HTTP connection alive. Every loop is bounded by count
and by `--max-seconds`. Bodies are built before the clock starts, so the figure measures the
server, not the generator (the client still shares the machine's cores with it).

Exit status: 0 when the server accepted every record sent, 1 otherwise (non-200s, duplicates,
rejections or the time limit cutting the run short).

    python bench/ingest_bench.py --url http://127.0.0.1:8000 --api-key <key> --events 200000
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import queue
import random
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

import requests

MODELS = (
    ("gpt-4o", "openai", 2.5e-6, 1e-5),
    ("gpt-4o-mini", "openai", 1.5e-7, 6e-7),
    ("claude-sonnet-4", "anthropic", 3e-6, 1.5e-5),
    ("claude-haiku-4", "anthropic", 8e-7, 4e-6),
    ("gemini-2.5-flash", "google", 3e-7, 2.5e-6),
)
TOOLS = ("SearchTool", "WebFetch", "PythonREPL", "SQLQuery", "FileRead", "Calculator")
ACTIONS = ("plan", "reflect", "delegate", "route", "summarize")
AGENTS = ("researcher", "writer", "critic", "planner")
WORDS = (
    "agent", "tool", "call", "search", "result", "model", "token", "budget", "latency", "retry",
    "plan", "step", "answer", "question", "context", "window", "memory", "vector", "store",
    "document", "summary", "source", "citation", "draft", "review",
)  # fmt: skip
BASE_TIME = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def sentence(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def session_start(session_id: str, index: int) -> dict[str, object]:
    return {
        "type": "session.start",
        "id": f"{session_id}-start",
        "session_id": session_id,
        "name": f"bench run {index}",
        "started_at": iso(BASE_TIME + timedelta(seconds=index)),
        "tags": ["bench", f"shard-{index % 4}"],
        "metadata": {"bench": True, "host": "bench-client", "shard": index % 4},
        "user_query": "Summarise the latest results and cite the sources.",
    }


class SessionState:
    """Per-session clock and span tree, so events carry plausible parents and times."""

    def __init__(self, session_id: str, index: int) -> None:
        self.session_id = session_id
        self.clock = BASE_TIME + timedelta(seconds=index, milliseconds=500)
        self.action_span = ""
        self.count = 0


def event_record(rng: random.Random, state: SessionState) -> dict[str, object]:
    """One `event` record: about 20 fields and 300 bytes of params/prompt payload."""
    state.count += 1
    span_id = f"{state.session_id}-{state.count:06d}"
    roll = rng.random()
    kind = "action" if roll < 0.15 or not state.action_span else "llm" if roll < 0.6 else "tool"
    started = state.clock
    duration = timedelta(milliseconds=rng.randint(20, 4000 if kind == "llm" else 800))
    state.clock = started + duration + timedelta(milliseconds=rng.randint(1, 50))
    failed = rng.random() < 0.03
    record: dict[str, object] = {
        "type": "event",
        "id": span_id,
        "session_id": state.session_id,
        "span_id": span_id,
        "kind": kind,
        "started_at": iso(started),
        "ended_at": iso(started + duration),
        "agent_id": rng.choice(AGENTS),
        "status": "error" if failed else "ok",
        "attributes": {"bench": True, "seq": state.count, "host": "bench-client"},
    }
    if kind == "action":
        state.action_span = span_id
        record |= {
            "name": rng.choice(ACTIONS),
            "params": {"goal": sentence(rng, 160), "step": state.count, "budget": 5},
            "returns": {"ok": not failed, "note": sentence(rng, 80)},
        }
    else:
        record["parent_span_id"] = state.action_span
    if kind == "llm":
        model, provider, prompt_price, completion_price = rng.choice(MODELS)
        prompt_tokens, completion_tokens = rng.randint(200, 6000), rng.randint(20, 900)
        record |= {
            "name": f"{provider}.chat",
            "model": model,
            "provider": provider,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "cost": round(prompt_tokens * prompt_price + completion_tokens * completion_price, 8),
            "prompt": [
                {"role": "system", "content": "You are a careful research assistant."},
                {"role": "user", "content": sentence(rng, 150)},
            ],
            "completion": {"role": "assistant", "content": sentence(rng, 80)},
        }
    elif kind == "tool":
        record |= {
            "name": rng.choice(TOOLS),
            "params": {"query": sentence(rng, 150), "limit": 10, "timeout_s": 30},
            "returns": {"hits": rng.randint(0, 10), "first": sentence(rng, 80)},
        }
    if failed:
        record |= {
            "error_type": "TimeoutError",
            "error_message": "upstream did not answer within 30 s",
        }
    return record


def build_bodies(
    records: list[dict[str, object]], batch: int, compress: bool
) -> list[tuple[bytes, int]]:
    bodies = []
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        body = json.dumps({"records": chunk}, separators=(",", ":")).encode()
        bodies.append((gzip.compress(body, compresslevel=1) if compress else body, len(chunk)))
    return bodies


def generate(args: argparse.Namespace) -> tuple[list[tuple[bytes, int]], list[tuple[bytes, int]]]:
    """Session-start bodies and event bodies.

    "session" spread: each session's events are contiguous, so a batch holds one or two sessions
    (what an SDK buffering its own run sends) and the bodies are interleaved so concurrent
    requests mostly touch different sessions. "mixed": every event goes to a random session, so
    every batch touches most sessions (a relay fanning in many agents; worst case for row locks).
    """
    rng = random.Random(args.seed)
    run = uuid.uuid4().hex[:8]  # a fresh run never collides with ids an earlier run stored
    states = [SessionState(f"bench-{run}-s{i:05d}", i) for i in range(args.sessions)]
    starts = [session_start(s.session_id, i) for i, s in enumerate(states)]
    # Small session.start batches: they also warm every gunicorn worker (its first request
    # pays for imports and broker connections) before the clock starts.
    start_batch = max(1, min(args.batch, len(starts) // (2 * args.concurrency)))
    start_bodies = build_bodies(starts, start_batch, args.gzip)
    if args.spread == "mixed":
        events = [event_record(rng, rng.choice(states)) for _ in range(args.events)]
        return start_bodies, build_bodies(events, args.batch, args.gzip)
    per_session = [args.events // len(states)] * len(states)
    for i in range(args.events % len(states)):
        per_session[i] += 1
    events = [
        event_record(rng, s) for s, n in zip(states, per_session, strict=True) for _ in range(n)
    ]
    bodies = build_bodies(events, args.batch, args.gzip)
    # Interleave: body k of the run is taken from far apart in session order.
    stride = max(1, len(bodies) // args.concurrency)
    order = sorted(range(len(bodies)), key=lambda k: (k % stride, k // stride))
    return start_bodies, [bodies[k] for k in order]


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    non_200: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)


def post_all(
    args: argparse.Namespace, bodies: list[tuple[bytes, int]], tally: Tally, deadline: float
) -> None:
    """Send the bodies from args.concurrency threads until done or the deadline passes."""
    work: queue.SimpleQueue[tuple[bytes, int]] = queue.SimpleQueue()
    for item in bodies:
        work.put(item)
    threads = [
        threading.Thread(target=worker, args=(args, work, tally, deadline), daemon=True)
        for _ in range(args.concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + args.timeout + 5)


def worker(
    args: argparse.Namespace,
    work: queue.SimpleQueue[tuple[bytes, int]],
    tally: Tally,
    deadline: float,
) -> None:
    endpoint = args.url.rstrip("/") + "/api/v1/ingest"
    headers = {"Authorization": f"Bearer {args.api_key}", "Content-Type": "application/json"}
    if args.gzip:
        headers["Content-Encoding"] = "gzip"
    with requests.Session() as http:
        while time.monotonic() < deadline:
            try:
                body, count = work.get_nowait()
            except queue.Empty:
                return
            started = time.perf_counter()
            try:
                response = http.post(endpoint, data=body, headers=headers, timeout=args.timeout)
            except requests.RequestException as exc:
                record_failure(tally, count, f"{type(exc).__name__}: {exc}")
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            record_response(tally, count, response, elapsed_ms)


def record_failure(tally: Tally, count: int, message: str) -> None:
    with tally.lock:
        tally.sent += count
        tally.non_200 += 1
        if len(tally.errors) < 5:
            tally.errors.append(message[:200])


def record_response(tally: Tally, count: int, response: requests.Response, ms: float) -> None:
    answer = response.json() if response.status_code == 200 else {}
    with tally.lock:
        tally.sent += count
        tally.latencies_ms.append(ms)
        if response.status_code != 200:
            tally.non_200 += 1
            if len(tally.errors) < 5:
                tally.errors.append(f"HTTP {response.status_code}: {response.text[:300]}")
            return
        tally.accepted += answer.get("accepted", 0)
        tally.duplicates += answer.get("duplicates", 0)
        tally.rejected += answer.get("rejected", 0)


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def cpu_seconds(roots: dict[str, int]) -> dict[str, float] | None:
    """CPU seconds so far of the whole machine ("machine", busy time from /proc/stat), of this
    client, and of each process tree under the named root pids. None off Linux."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    own: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()
        children.setdefault(int(rest[1]), []).append(int(name))
        own[int(name)] = sum(int(x) for x in rest[11:15]) / tick  # utime stime cutime cstime
    used = {"machine": (sum(fields) - fields[3] - fields[4]) / tick, "bench client": 0.0}
    used["bench client"] = own.get(os.getpid(), 0.0)
    for label, root in roots.items():
        todo, used[label] = [root], 0.0
        while todo:
            pid = todo.pop()
            used[label] += own.get(pid, 0.0)
            todo += children.get(pid, [])
    return used


def cpu_split(
    before: dict[str, float] | None, after: dict[str, float] | None, wall: float, events: int
) -> list[str]:
    """Where the cores went while sending, and the server's CPU cost per 1,000 events: the figure
    that does not depend on what else the machine was doing."""
    if not before or not after or wall <= 0:
        return ["cpu: not measured (no /proc)"]
    cores = os.cpu_count() or 1
    spent = {k: after[k] - before.get(k, 0.0) for k in after}
    machine = spent.pop("machine")
    other = max(0.0, machine - sum(spent.values()))
    parts = [f"{k} {100 * v / wall / cores:.0f} %" for k, v in spent.items()]
    lines = [
        f"cpu while sending, % of {cores} cores: machine busy {100 * machine / wall / cores:.0f} %"
        f" = {', '.join(parts)}, other processes {100 * other / wall / cores:.0f} %"
    ]
    server = {k: v for k, v in spent.items() if k != "bench client"}
    if server and events:
        total = sum(server.values())
        each = ", ".join(f"{k} {1000 * v / events * 1000:.0f}" for k, v in server.items())
        lines.append(
            f"server cpu per 1,000 events: {1000 * total / events * 1000:.0f} ms ({each}); "
            f"ceiling if the server had all {cores} cores: {events * cores / total:,.0f} events/s"
        )
    return lines


def parse_cpu_roots(parser: argparse.ArgumentParser, text: str) -> dict[str, int]:
    """--cpu-roots "name=pid,name=pid" as {name: pid}; a usage error otherwise."""
    try:
        return {name: int(pid) for name, pid in (r.split("=") for r in text.split(",") if r)}
    except ValueError:
        parser.error("--cpu-roots is name=pid,name=pid")


def check_url(url: str) -> None:
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing to load {url}: this bench only targets 127.0.0.1")


def report(args: argparse.Namespace, setup: Tally, tally: Tally, wall: float, cpu: str) -> bool:
    expected = args.events
    total_sent = setup.sent + tally.sent
    total_accepted = setup.accepted + tally.accepted
    lat = tally.latencies_ms
    print(
        f"target: {args.url}  batch={args.batch} concurrency={args.concurrency} "
        f"gzip={args.gzip} spread={args.spread}"
    )
    print(f"sessions: {args.sessions} session.start records accepted={setup.accepted}")
    print(f"events sent: {tally.sent} of {expected}  accepted: {tally.accepted}")
    print(f"wall time: {wall:.2f} s")
    print(f"events/s: {tally.accepted / wall if wall else 0:,.0f}")
    print(f"requests answered: {len(lat)}  records/request: {args.batch}")
    if tally.sent < expected:
        print(f"stopped early: --max-seconds {args.max_seconds:g} or failed requests")
    print(
        f"latency ms: p50={percentile(lat, 0.50):.1f} p95={percentile(lat, 0.95):.1f} "
        f"p99={percentile(lat, 0.99):.1f} max={max(lat, default=float('nan')):.1f}"
    )
    print(f"non-200 responses: {setup.non_200 + tally.non_200}")
    duplicates = setup.duplicates + tally.duplicates
    rejected = setup.rejected + tally.rejected
    print(
        f"server totals: accepted={total_accepted} duplicates={duplicates} "
        f"rejected={rejected} (sent {total_sent})"
    )
    for line in cpu:
        print(line)
    for message in setup.errors + tally.errors:
        print(f"error: {message}")
    is_complete = tally.sent == expected and total_accepted == total_sent
    print(f"result: {'OK' if is_complete else 'FAILED'} (accepted == sent: {is_complete})")
    return is_complete


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="Server root, e.g. http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="Stop sending after this")
    parser.add_argument("--timeout", type=float, default=60.0, help="Per-request timeout (s)")
    parser.add_argument("--gzip", action="store_true", help="Send Content-Encoding: gzip bodies")
    parser.add_argument(
        "--spread",
        choices=("session", "mixed"),
        default="session",
        help="session: a batch holds one session's events (SDK-like); mixed: random sessions",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--cpu-roots",
        default="",
        help="name=pid,... process trees whose CPU share is reported (e.g. gunicorn=123)",
    )
    args = parser.parse_args(argv)
    if min(args.events, args.batch, args.concurrency, args.sessions) < 1:
        parser.error("--events, --batch, --concurrency and --sessions must be at least 1")
    check_url(args.url)
    args.cpu_roots = parse_cpu_roots(parser, args.cpu_roots)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    built = time.perf_counter()
    start_bodies, event_bodies = generate(args)
    size = sum(len(body) for body, _ in event_bodies)
    print(
        f"generated {args.events} events in {len(event_bodies)} bodies "
        f"({size / len(event_bodies) / 1024:.0f} KiB each, {size / args.events:.0f} B/event) "
        f"in {time.perf_counter() - built:.1f} s"
    )
    deadline = time.monotonic() + args.max_seconds
    setup = Tally()
    post_all(args, start_bodies, setup, deadline)
    tally = Tally()
    if setup.accepted != setup.sent:
        print("session.start records were not all accepted; not sending events")
        report(args, setup, tally, 0.0, [])
        return 1
    cpu_before = cpu_seconds(args.cpu_roots)
    started = time.perf_counter()
    post_all(args, event_bodies, tally, deadline)
    wall = time.perf_counter() - started
    cpu = cpu_split(cpu_before, cpu_seconds(args.cpu_roots), wall, tally.accepted)
    return 0 if report(args, setup, tally, wall, cpu) else 1


if __name__ == "__main__":
    sys.exit(main())
