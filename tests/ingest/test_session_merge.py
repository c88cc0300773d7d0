"""The session merge rules (ingest/session_merge.py), pure: records folded per batch and merged
into a row give the same row however the records were split into batches and ordered."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ingest.formats.records import Record, SessionRecord, SpanRecord
from ingest.session_merge import merge_change, session_changes

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class Row:
    name: str = ""
    name_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    end_state: str = "running"
    end_state_reason: str = ""
    tags: Any = field(default_factory=list)
    metadata: Any = field(default_factory=dict)
    config: Any = field(default_factory=dict)
    user_query: str = ""
    parent_external_id: str = ""
    group_key: str = ""
    is_inferred: bool = True
    is_summary_stale: bool = False


def stored(batches: list[list[Record]]) -> Row:
    row = Row()
    for batch in batches:
        for change in session_changes(batch).values():
            merge_change(row, change)
    return row


def span(n: int, minutes: int) -> SpanRecord:
    return SpanRecord(
        record_id=f"s{n}",
        session_id="s",
        span_id=f"{n}",
        kind="tool",
        name="t",
        started_at=T0 + timedelta(minutes=minutes),
    )


def root(n: int, start: int, end: int, state: str) -> list[Record]:
    return [
        SessionRecord(
            record_id=f"r{n}",
            session_id="s",
            action="start",
            name=f"run {n}",
            started_at=T0 + timedelta(minutes=start),
        ),
        SessionRecord(
            record_id=f"e{n}",
            session_id="s",
            action="end",
            end_state=state,
            ended_at=T0 + timedelta(minutes=end),
        ),
    ]


def test_start_end_and_name_come_out_the_same_in_any_order_and_any_split() -> None:
    records = [span(1, 1), span(2, 12), *root(1, 0, 10, "success"), *root(2, 11, 20, "fail")]
    rows = set()
    for order in itertools.permutations(range(len(records))):
        ordered = [records[i] for i in order]
        for cut in (1, 3, 5):
            row = stored([ordered[:cut], ordered[cut:]])
            rows.add((row.started_at, row.ended_at, row.end_state, row.is_inferred))
    assert rows == {(T0, T0 + timedelta(minutes=20), "fail", False)}


def test_until_a_start_comes_the_session_starts_at_its_earliest_record() -> None:
    row = stored([[span(2, 12)], [span(1, 1)]])
    assert (row.started_at, row.is_inferred) == (T0 + timedelta(minutes=1), True)
    row = stored([[span(1, 1)], root(1, 5, 10, "success"), [span(0, -3)]])
    assert (row.started_at, row.is_inferred) == (T0 + timedelta(minutes=5), False)


def test_an_earlier_root_names_the_session_unless_a_client_named_it() -> None:
    def named(name: str, at: datetime | None) -> SessionRecord:
        return SessionRecord(record_id=name, session_id="s", action="update", name=name, name_at=at)

    late, early = named("late root", T0 + timedelta(minutes=5)), named("early root", T0)
    assert stored([[late], [early]]).name == stored([[early], [late]]).name == "early root"
    client = named("the client's", None)
    assert stored([[client], [early]]).name == stored([[early, client]]).name == "the client's"
