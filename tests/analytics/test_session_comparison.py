"""The alignment of two sessions' steps, without a database."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from typing import Any

import pytest

from analytics.session_comparison import (
    MAX_STRETCH_CELLS,
    MessageItem,
    Step,
    Totals,
    common_subsequence,
    compare_messages,
    compare_steps,
    compare_totals,
    preview_text,
)

_pks = iter(range(1, 1_000_000))


def step(kind: str, name: str, **fields: object) -> Step:
    values: dict[str, Any] = {"status": "ok", **fields}
    return Step(pk=next(_pks), kind=kind, name=name, **values)


def llm(name: str = "chat", **fields: object) -> Step:
    values = {"model": "gpt-4o", "prompt_digest": "p1", "output_digest": "o1", **fields}
    return step("llm", name, **values)


def tool(name: str = "search", **fields: object) -> Step:
    return step("tool", name, **fields)


def operations(rows: object) -> list[str]:
    return [row.operation for row in rows]  # type: ignore[attr-defined]


def names(rows: object, side: str) -> list[str | None]:
    return [
        getattr(row, side).name if getattr(row, side) else None
        for row in rows  # type: ignore[attr-defined]
    ]


def test_identical_sessions_pair_every_step_and_do_not_diverge() -> None:
    a = [llm(), tool(), step("agent", "planner"), llm("answer")]
    b = [replace(s, pk=s.pk + 100) for s in a]

    result = compare_steps(a, b)

    assert operations(result.rows) == ["same"] * 4
    assert result.first_divergence is None
    assert result.is_identical


def test_an_inserted_retry_is_one_inserted_row_and_later_steps_stay_paired() -> None:
    a = [llm("plan"), tool("search"), tool("web_fetch"), llm("answer")]
    b = [
        llm("plan"),
        tool("search", status="error", error="TimeoutError: 30 s"),
        tool("search"),
        tool("web_fetch"),
        llm("answer"),
    ]

    result = compare_steps(a, b)

    # The attempt the rest of the run follows (the retry) pairs with A's search; the failed one
    # is the inserted row.
    assert operations(result.rows) == ["same", "inserted", "same", "same", "same"]
    assert names(result.rows, "a") == ["plan", None, "search", "web_fetch", "answer"]
    inserted = result.rows[1].b
    assert inserted is not None and inserted.status == "error"
    assert result.first_divergence == 1


def test_a_deleted_step_is_one_deleted_row() -> None:
    a = [llm("plan"), tool("search"), tool("calculator"), llm("answer")]
    b = [llm("plan"), tool("search"), llm("answer")]

    result = compare_steps(a, b)

    assert operations(result.rows) == ["same", "same", "deleted", "same"]
    assert result.rows[2].a is not None and result.rows[2].a.name == "calculator"
    assert result.first_divergence == 2
    assert result.counts == {"same": 3, "changed": 0, "inserted": 0, "deleted": 1}


def test_a_changed_model_is_a_material_difference_and_the_first_divergence() -> None:
    a = [tool("search"), llm("judge", model="gpt-4o"), llm("answer")]
    b = [tool("search"), llm("judge", model="gpt-4o-mini"), llm("answer")]

    result = compare_steps(a, b)

    assert operations(result.rows) == ["same", "changed", "same"]
    [difference] = result.rows[1].differences
    assert (difference.field, difference.a, difference.b) == ("model", "gpt-4o", "gpt-4o-mini")
    assert result.first_divergence == 1


def test_changed_prompt_and_output_show_their_previews() -> None:
    a = [llm(prompt_digest="x", prompt_preview="Say hi", output_digest="y", output_preview="Hi")]
    b = [llm(prompt_digest="z", prompt_preview="Say bye", output_digest="y", output_preview="Hi")]

    [row] = compare_steps(a, b).rows

    assert [(d.field, d.a, d.b) for d in row.differences] == [("prompt", "Say hi", "Say bye")]


def test_small_changes_in_measurements_are_not_differences_and_big_ones_do_not_diverge() -> None:
    a = [llm(prompt_tokens=100, completion_tokens=50, cost=0.010, duration_ms=1000.0)]
    close = [llm(prompt_tokens=104, completion_tokens=50, cost=0.0102, duration_ms=1040.0)]
    far = [llm(prompt_tokens=400, completion_tokens=50, cost=0.040, duration_ms=4000.0)]

    assert compare_steps(a, close).rows[0].operation == "same"
    result = compare_steps(a, far)
    assert result.rows[0].differing_fields == {"tokens", "cost", "latency"}
    assert result.first_divergence is None  # measurements are highlighted, not a divergence
    assert not result.is_identical


def test_a_step_renamed_in_place_pairs_with_its_old_self_but_other_kinds_never_pair() -> None:
    a = [llm("plan"), tool("search"), llm("answer")]
    b = [llm("plan"), tool("bing"), llm("answer")]
    c = [llm("plan"), step("action", "search"), llm("answer")]

    renamed = compare_steps(a, b)
    other_kind = compare_steps(a, c)

    assert operations(renamed.rows) == ["same", "changed", "same"]
    assert renamed.rows[1].differing_fields == {"name"}
    assert sorted(operations(other_kind.rows)) == ["deleted", "inserted", "same", "same"]


def test_empty_sessions_compare_to_nothing_or_to_all_inserted() -> None:
    assert compare_steps([], []).rows == ()
    assert compare_steps([], []).first_divergence is None

    result = compare_steps([], [llm(), tool()])

    assert operations(result.rows) == ["inserted", "inserted"]
    assert result.first_divergence == 0


def test_big_sessions_that_share_nothing_still_align_every_step() -> None:
    """Past MAX_STRETCH_CELLS a stretch is paired in order, not cell by cell."""
    size = int(MAX_STRETCH_CELLS**0.5) + 10
    a = [tool(f"a{i}") for i in range(size)]
    b = [tool(f"b{i}") for i in range(size + 5)]

    result = compare_steps(a, b)

    assert result.counts["changed"] == size
    assert result.counts["inserted"] == 5
    assert [row.b.name for row in result.rows if row.b] == [s.name for s in b]


def test_message_sequences_align_by_sender_and_receivers() -> None:
    def message(sender: str, receiver: str, status: str = "processed") -> MessageItem:
        return MessageItem(next(_pks), sender, (receiver,), status=status)

    a = [message("planner", "coder"), message("coder", "reviewer")]
    b = [
        message("planner", "coder"),
        message("coder", "coder"),
        message("coder", "reviewer", status="failed"),
    ]

    rows = compare_messages(a, b)

    assert operations(rows) == ["same", "inserted", "changed"]
    assert rows[2].differing_fields == {"status"}


def test_totals_say_whether_b_spent_more() -> None:
    a = Totals(duration_ms=1000.0, tokens=500, cost=0.01, errors=0, steps=4)
    b = Totals(duration_ms=None, tokens=800, cost=0.005, errors=1, steps=5)

    rows = {row.label: row for row in compare_totals(a, b)}

    assert rows["duration_ms"].change is None and not rows["duration_ms"].is_worse
    assert rows["tokens"].change == 300 and rows["tokens"].is_worse
    assert not rows["cost"].is_worse
    assert rows["errors"].is_worse
    assert not rows["steps"].is_worse


def test_previews_show_the_last_chat_message_or_the_text_cut_short() -> None:
    chat = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "What is 2+2?"}]

    assert preview_text(chat, max_chars=50) == "What is 2+2?"
    assert preview_text("x" * 100, max_chars=10) == "x" * 9 + "…"
    assert preview_text({"q": "café"}, max_chars=50) == '{"q": "café"}'
    assert preview_text(None, max_chars=50) == ""


def test_a_repeating_loop_with_scattered_retries_keeps_every_iteration_paired() -> None:
    """Agent loops repeat the same steps: a greedy longest-block match would pair them off by a
    period and show hundreds of inserted and deleted rows."""
    loop = [("llm", "think"), ("tool", "search"), ("tool", "fetch")]
    a = [step(kind, name) for _ in range(60) for kind, name in loop]
    b = []
    for iteration in range(60):
        for kind, name in loop:
            if name == "search" and iteration in (5, 20, 41):
                b.append(step(kind, name, status="error", error="Timeout"))
            b.append(step(kind, name))

    result = compare_steps(a, b)

    assert result.counts == {"same": 180, "changed": 0, "inserted": 3, "deleted": 0}
    inserted = [row.b for row in result.rows if row.operation == "inserted"]
    assert [step.status if step is not None else None for step in inserted] == ["error"] * 3


def test_the_anchors_are_a_longest_common_subsequence() -> None:
    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abc") for _ in range(rng.randint(0, 12))]
        b = [rng.choice("abc") for _ in range(rng.randint(0, 12))]

        pairs = common_subsequence(a, b)

        assert all(a[i] == b[j] for i, j in pairs)
        assert all(i0 < i1 and j0 < j1 for (i0, j0), (i1, j1) in itertools.pairwise(pairs))
        assert len(pairs) == lcs_length(a, b)


def test_sessions_too_different_for_the_diff_still_align_every_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("analytics.session_comparison.MAX_EDITS", 2)
    a = [tool("x"), llm("plan"), tool("y"), tool("z"), llm("answer")]
    b = [llm("plan"), tool("w"), tool("v"), tool("u"), llm("answer"), tool("t")]

    result = compare_steps(a, b)

    assert [row.a.name for row in result.rows if row.a] == [s.name for s in a]
    assert [row.b.name for row in result.rows if row.b] == [s.name for s in b]


def lcs_length(a: list[str], b: list[str]) -> int:
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            lengths[i + 1][j + 1] = (
                lengths[i][j] + 1 if x == y else max(lengths[i][j + 1], lengths[i + 1][j])
            )
    return lengths[-1][-1]
