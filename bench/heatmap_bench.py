"""Server time of the test heatmap page at 500 tests x 200 runs: prints figures, asserts nothing.

Seeds a throwaway database (a temporary SQLite file, or the empty database DATABASE_URL names, as
bench/run_heatmap_bench.sh does with a throwaway PostgreSQL) with 200 runs of 500 tests, then
requests /tests/?runs=200 through Django's full stack (middleware, login, template) and prints
the time of each request and where it goes (queries, compute, chart, render).

    python bench/heatmap_bench.py                  # SQLite in a temp dir
    python bench/heatmap_bench.py --tests 500 --runs 200 --requests 10
"""

from __future__ import annotations

import argparse
import cProfile
import os
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 300
OUTCOME_SHARES = {"pass": 0.93, "fail": 0.03, "error": 0.01, "skip": 0.02, "xfail": 0.01}


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


def seed(tests: int, runs: int) -> Any:
    """A user, a project, `runs` hourly runs and a result of every test in every run."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from ingest.models import Membership, Project, TestResult, TestRun

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password="bench")
    project = Project.objects.create(name="Bench", slug="bench")
    Membership.objects.create(user=user, project=project)
    start = datetime.now(UTC) - timedelta(hours=runs + 1)
    run_rows = TestRun.objects.bulk_create(
        TestRun(
            project=project,
            external_id=f"run-{j}",
            tier="unit",
            suite="bench",
            commit=f"{j:040x}",
            branch="main",
            started_at=start + timedelta(hours=j),
        )
        for j in range(runs)
    )
    rng = np.random.default_rng(7)
    outcomes = rng.choice(list(OUTCOME_SHARES), size=(tests, runs), p=list(OUTCOME_SHARES.values()))
    test_ids = [
        f"tests/unit/test_module_{i % 40}.py::test_behaviour_number_{i}" for i in range(tests)
    ]
    TestResult.objects.bulk_create(
        (
            TestResult(
                project=project,
                run=run,
                test_id=test_ids[i],
                name=test_ids[i].rsplit("::", 1)[-1],
                outcome=outcomes[i, j],
                duration_ms=float(rng.integers(1, 400)),
                error_message="AssertionError: boom" if outcomes[i, j] in ("fail", "error") else "",
            )
            for j, run in enumerate(run_rows)
            for i in range(tests)
        ),
        batch_size=5000,
    )
    return user


def profile_once(project_id: int, runs: int) -> dict[str, float]:
    """The page's steps timed one by one (the same calls the view makes)."""
    from analytics import queries
    from dashboard import views_testruns

    marks = {}
    t0 = time.perf_counter()
    run_frame = queries.test_run_frame(project_id, limit=runs)
    results = queries.test_result_frame(run_frame, with_details=False)
    marks["queries (runs + results)"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    facets = views_testruns._heatmap_facets(results)
    marks["matrix + chart JSON"] = time.perf_counter() - t1
    marks["json bytes"] = sum(len(f["json"]) for f in facets)
    return marks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="cProfile one request too.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="heatmap-bench-") as data_dir:
        configure(data_dir)
        from django.db import connection
        from django.test import Client

        seeded = time.perf_counter()
        user = seed(args.tests, args.runs)
        print(
            f"Seeded {args.tests} tests x {args.runs} runs = {args.tests * args.runs:,} results "
            f"on {connection.vendor} in {time.perf_counter() - seeded:.1f} s"
        )
        client = Client()
        client.force_login(user)
        url = f"/tests/?runs={args.runs}"
        response = client.get(url)  # warm-up: imports, template compilation, connection
        assert response.status_code == 200, response.status_code
        timings = []
        for _ in range(args.requests):
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        steps = profile_once(user.projects.get().pk, args.runs)
        if args.profile:
            cProfile.runctx(
                "client.get(url)", globals(), {"client": client, "url": url}, sort="cumulative"
            )
        print(
            f"GET {url}: median {statistics.median(timings):.0f} ms, min {min(timings):.0f} ms, "
            f"max {max(timings):.0f} ms over {args.requests} requests "
            f"(target < {TARGET_MS} ms); page {len(response.content) / 1e6:.2f} MB"
        )
        for name, value in steps.items():
            shown = f"{value / 1e6:.2f} MB" if name == "json bytes" else f"{value * 1000:.0f} ms"
            print(f"  {name}: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
