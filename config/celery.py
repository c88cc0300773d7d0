"""The Celery app; settings come from Django settings with the CELERY_ prefix."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from celery import Celery

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("observatory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class BrokerBreaker:
    """Sends tasks from a web request without ever failing or slowing it when the broker is down:
    after one failed send, this process stops trying for `retry_seconds` (the beat sweeps catch
    up on what was not sent). One per process, shared by every caller: there is one broker."""

    def __init__(self, retry_seconds: float = 30.0) -> None:
        self.retry_seconds = retry_seconds
        self._down_until = 0.0

    @property
    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def send(self, task: Any, args: tuple[Any, ...], *, left_to: str, **options: Any) -> bool:
        """task.apply_async(args, **options) unless the broker is down; False when not sent,
        logging what was `left_to` whom."""
        if self.is_down:
            return False
        try:
            task.apply_async(args, retry=False, **options)
        except Exception:
            self._down_until = time.monotonic() + self.retry_seconds
            logger.warning("broker unavailable: %s", left_to)
            return False
        return True


broker = BrokerBreaker()
