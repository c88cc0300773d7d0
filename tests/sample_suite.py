"""Run the sample suite in tests/fixtures/sample_suite/ with pytest in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.waiting import DEADLINE

SAMPLE_SUITE = Path(__file__).resolve().parent / "fixtures" / "sample_suite"
SAMPLE_TEST_COUNT = 7
SAMPLE_OUTCOMES = {"pass": 3, "fail": 1, "error": 1, "skip": 1, "xfail": 1}


def run_sample_suite(*args: str, env: dict[str, str] | None = None, status: int = 1) -> str:
    """pytest's output. The suite fails on purpose, so exit status 1 is what `status` expects."""
    # The suite is not a Django project (pytest-django would read DJANGO_SETTINGS_MODULE), and
    # reports only when the test asks for it.
    skipped = ("DJANGO_SETTINGS_MODULE", "OBSERVATORY_TEST_REPORT")
    environ = {k: v for k, v in os.environ.items() if k not in skipped} | (env or {})
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *args],
        cwd=SAMPLE_SUITE,
        env=environ,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == status, f"the sample suite exited {done.returncode}:\n{output}"
    return output
