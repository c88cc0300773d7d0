from __future__ import annotations
import pytest
from config.celery import app

@pytest.mark.worker
def test_fails_on_purpose(celery_worker) -> None:
    app.send_task("celery.accumulate", args=[1])
    celery_worker.wait_for_log("succeeded", timeout=10)
    assert False
