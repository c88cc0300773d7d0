"""SummaryBatcher: the session pks of many requests go to the broker as one summary task."""

from __future__ import annotations

import time

from analytics.tasks import SummaryBatcher


def test_sessions_added_before_a_flush_are_sent_once_as_one_set() -> None:
    sent: list[set[int]] = []
    batcher = SummaryBatcher(sent.append, seconds=3600)  # its thread waits; flush by hand
    batcher.add([3, 1])
    batcher.add([1, 2])
    batcher.flush()
    batcher.flush()
    assert sent == [{1, 2, 3}]


def test_its_thread_sends_what_was_added() -> None:
    sent: list[set[int]] = []
    batcher = SummaryBatcher(sent.append, seconds=0.01)
    batcher.add([7])
    batcher.add([8])
    for _ in range(500):
        if set().union(*sent) == {7, 8}:
            break
        time.sleep(0.01)
    assert set().union(*sent) == {7, 8}
