"""The message sequence diagram as data: lifelines (one per agent) and arrows in time order. Pure.

One row per (message, receiver), top to bottom in time order; the chart in
dashboard/charts/multiagent.py draws them. Sessions with thousands of messages are shown one window
at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

UNKNOWN_AGENT = "?"
# Status → the arrow group it is drawn in (colour and head symbol live in the chart).
ARROW_GROUPS = {
    "processed": "done",
    "received": "done",
    "delivered": "done",
    "created": "in_flight",
    "sent": "in_flight",
    "retried": "in_flight",
    "failed": "failed",
    "dead_lettered": "dead",
    "expired": "dead",
}


@dataclass(frozen=True)
class Arrow:
    pk: int
    row: int
    sender: str
    receiver: str
    x0: float
    x1: float
    group: str
    status: str
    at: datetime | None
    offset_ms: float
    preview: str
    channel: str
    delivery_ms: float | None
    error_type: str

    @property
    def is_self(self) -> bool:
        return self.sender == self.receiver


@dataclass(frozen=True)
class SequenceWindow:
    """Which slice of a session's messages a page shows, and the links around it."""

    offset: int
    size: int
    total: int

    @property
    def first(self) -> int:
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)

    @property
    def previous_offset(self) -> int | None:
        return max(self.offset - self.size, 0) if self.offset > 0 else None

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.size if self.offset + self.size < self.total else None

    def pages(self) -> list[dict[str, Any]]:
        """Every window as {offset, label, is_current}, for the window picker."""
        return [
            {
                "offset": start,
                "label": f"{start + 1} to {min(start + self.size, self.total)}",
                "is_current": start == self.offset,
            }
            for start in range(0, self.total, self.size)
        ]


def sequence_window(total: int, *, offset: int, size: int) -> SequenceWindow:
    """The window starting at `offset` (clamped into range, aligned to `size`)."""
    size = max(size, 1)
    last_start = max((total - 1) // size * size, 0)
    offset = min(max(offset, 0) // size * size, last_start)
    return SequenceWindow(offset=offset, size=size, total=total)


def lifelines(messages: Sequence[Mapping[str, Any]]) -> list[str]:
    """Agents in the order they first appear (each message's sender, then its receivers)."""
    agents: dict[str, None] = {}
    for message in messages:
        agents[message.get("sender") or UNKNOWN_AGENT] = None
        for receiver in message.get("receivers") or [UNKNOWN_AGENT]:
            agents[receiver or UNKNOWN_AGENT] = None
    return list(agents)


def sequence_arrows(
    messages: Sequence[Mapping[str, Any]], agents: Sequence[str], *, origin: datetime | None
) -> list[Arrow]:
    """One arrow per (message, receiver), rows in the messages' order. A message to itself is
    drawn as a short stub to the right of its lifeline. Each message is a dict with pk, sender,
    receivers, status, started_at, sent_at, preview, channel, delivery_ms and error_type."""
    lane = {agent: i for i, agent in enumerate(agents)}
    arrows: list[Arrow] = []
    for message in messages:
        sender = message.get("sender") or UNKNOWN_AGENT
        at = message.get("sent_at") or message.get("started_at")
        offset = (at - origin).total_seconds() * 1000 if at and origin else 0.0
        for receiver in message.get("receivers") or [UNKNOWN_AGENT]:
            receiver = receiver or UNKNOWN_AGENT
            x0 = float(lane[sender])
            x1 = x0 + 0.35 if receiver == sender else float(lane[receiver])
            arrows.append(
                Arrow(
                    pk=int(message["pk"]),
                    row=len(arrows),
                    sender=sender,
                    receiver=receiver,
                    x0=x0,
                    x1=x1,
                    group=ARROW_GROUPS.get(str(message.get("status")), "in_flight"),
                    status=str(message.get("status") or ""),
                    at=at,
                    offset_ms=offset,
                    preview=str(message.get("preview") or ""),
                    channel=str(message.get("channel") or ""),
                    delivery_ms=message.get("delivery_ms"),
                    error_type=str(message.get("error_type") or ""),
                )
            )
    return arrows


def density(times: Sequence[datetime], *, bins: int = 60) -> list[tuple[datetime, int]]:
    """How many messages started in each of `bins` equal slices of the session's time span:
    [(slice start, count)]; [] without messages. The overview strip above the diagram."""
    if not times:
        return []
    first, last = min(times), max(times)
    span = (last - first).total_seconds()
    if span <= 0:
        return [(first, len(times))]
    counts = [0] * bins
    for at in times:
        counts[min(int((at - first).total_seconds() / span * bins), bins - 1)] += 1
    step = (last - first) / bins
    return [(first + step * i, count) for i, count in enumerate(counts)]
