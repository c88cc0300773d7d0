"""A down broker never fails or slows a request: after one failed send, a process stops trying
for a while (the beat sweeps catch up), then tries again."""

from __future__ import annotations

from typing import Any

from config.celery import BrokerBreaker


class UnreachableBroker:
    """Stands in for a Celery task whose broker refuses connections."""

    def __init__(self) -> None:
        self.calls = 0

    def apply_async(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        raise ConnectionRefusedError("broker at 127.0.0.1:1 refused")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, dict[str, Any]]] = []

    def apply_async(self, args: Any, **kwargs: Any) -> None:
        self.sent.append((args, kwargs))


def test_after_a_failed_send_the_process_stops_trying_until_the_wait_is_over() -> None:
    breaker = BrokerBreaker(retry_seconds=60)
    down = UnreachableBroker()
    assert breaker.send(down, (1,), left_to="a summary") is False
    assert breaker.send(down, (2,), left_to="a summary") is False
    assert down.calls == 1  # the second request paid nothing
    assert breaker.is_down


def test_a_send_after_the_wait_tries_again_and_passes_options_without_broker_retries() -> None:
    breaker = BrokerBreaker(retry_seconds=0)
    assert breaker.send(UnreachableBroker(), (1,), left_to="x") is False
    task = Recorder()
    assert breaker.send(task, (7,), left_to="x", countdown=5) is True
    assert task.sent == [((7,), {"retry": False, "countdown": 5})]
