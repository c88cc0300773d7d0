"""Server time of comparing two big sessions (2,000 steps each): prints figures, asserts nothing.

Seeds a throwaway database (a temporary SQLite file, or the empty database DATABASE_URL names, as
bench/run_compare_bench.sh does with a throwaway PostgreSQL) with two sessions of `--steps`
spans each (LLM calls with chat prompts and completions, tool calls with params and results),
B with a retry every 50 steps, a changed model every 100 and a run of steps A never had, then
times the pure alignment, the reads, the page (/sessions/compare/) and the API through Django's
full stack. CPU time is process time, so other work on a shared machine counts less.

    python bench/compare_bench.py                  # SQLite in a temp dir
    python bench/compare_bench.py --steps 2000 --requests 5
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def configure(data_dir: str) -> None:
    """Production-like settings (DEBUG off) on the throwaway database, then django.setup()."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{data_dir}/bench.sqlite3")
    os.environ["OBSERVATORY_DATA_DIR"] = data_dir
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_hex(32))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def _plan(steps: int, *, is_b: bool) -> list[dict[str, Any]]:
    """(kind, name, model, status) of each step; B drifts from A in the ways the page shows."""
    plan = []
    for i in range(steps):
        kind = "llm" if i % 3 == 0 else "tool"
        model = "gpt-4o-mini" if is_b and kind == "llm" and i % 100 == 0 else "gpt-4o"
        name = f"agent{i % 7}.think" if kind == "llm" else f"tool_{i % 11}"
        if is_b and kind == "tool" and i % 50 == 1:
            plan.append({"n": i, "kind": kind, "name": name, "model": "", "status": "error"})
        if is_b and 1000 <= i < 1040:
            name = f"fallback_{i}"  # a stretch only B ran (and A's steps there only A)
        plan.append({"n": i, "kind": kind, "name": name, "model": model if kind == "llm" else ""})
    return plan[:steps]


def seed(steps: int) -> tuple[Any, Any, Any]:
    """A user, a project and sessions A and B of `steps` spans with payloads."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ingest.models import Membership, Project, Session, Span, SpanPayload

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench")
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(user=user, project=project)
    start = datetime.now(UTC) - timedelta(days=1)
    sessions = []
    for is_b in (False, True):
        session = Session.objects.create(
            project=project, external_id=f"bench-{'b' if is_b else 'a'}", name="bench run",
            started_at=start, event_count=steps,
        )  # fmt: skip
        plan = _plan(steps, is_b=is_b)
        spans = Span.objects.bulk_create(
            Span(
                project=project,
                session=session,
                span_id=f"s{i}",
                kind=step["kind"],
                name=step["name"],
                model=step["model"],
                status=step.get("status", "ok"),
                started_at=start + timedelta(milliseconds=100 * i),
                duration_ms=80.0 + (i % 13),
                prompt_tokens=400 if step["kind"] == "llm" else None,
                completion_tokens=60 if step["kind"] == "llm" else None,
                error_type="TimeoutError" if step.get("status") == "error" else "",
            )
            for i, step in enumerate(plan)
        )
        SpanPayload.objects.bulk_create(
            SpanPayload(
                span=span,
                prompt=[
                    {"role": "system", "content": "You are a careful agent. " * 40},
                    {"role": "user", "content": f"Step {n}: what next?"},
                ]
                if span.kind == "llm"
                else None,
                completion=f"Do step {n + 1} " * 20 if span.kind == "llm" else None,
                params={"query": f"q{n}", "page": n % 5} if span.kind == "tool" else None,
                returns={"hits": [f"r{n}-{k}" for k in range(10)]} if span.kind == "tool" else None,
            )
            for n, span in ((step["n"], span) for step, span in zip(plan, spans, strict=True))
        )
        sessions.append(session)
    return user, sessions[0], sessions[1]


def timed(call: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(median wall ms, median CPU ms, last result) over `repeat` calls."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compare-bench-") as data_dir:
        configure(data_dir)
        from django.db import connection
        from django.test import Client

        from analytics import queries
        from analytics.session_comparison import compare_steps

        seeded = time.perf_counter()
        user, a, b = seed(args.steps)
        print(
            f"Seeded two sessions of {args.steps} steps on {connection.vendor} "
            f"in {time.perf_counter() - seeded:.1f} s"
        )
        steps_a = queries.comparison_steps(a, limit=args.steps)
        steps_b = queries.comparison_steps(b, limit=args.steps)
        figures = {
            "reads (spans + payloads, both sides)": timed(
                lambda: (
                    queries.comparison_steps(a, limit=args.steps + 1),
                    queries.comparison_steps(b, limit=args.steps + 1),
                ),
                args.requests,
            ),
            "alignment (pure)": timed(lambda: compare_steps(steps_a, steps_b), args.requests),
        }
        counts = figures["alignment (pure)"][2].counts
        client = Client(HTTP_HOST="localhost")
        client.force_login(user)
        for label, url in (
            ("page", f"/sessions/compare/?a={a.pk}&b={b.pk}"),
            ("API", f"/api/v1/session-comparison/?a={a.external_id}&b={b.external_id}"),
        ):
            assert client.get(url).status_code == 200  # warm-up: imports, templates
            figures[f"GET {label}"] = timed(lambda url=url: client.get(url), args.requests)
        print(f"Aligned rows: {counts}")
        for name, (wall, cpu, result) in figures.items():
            size = f"; {len(result.content) / 1e6:.2f} MB" if name.startswith("GET") else ""
            print(f"  {name}: median {wall:.0f} ms wall, {cpu:.0f} ms CPU{size}")
        print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
