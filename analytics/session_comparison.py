"""Comparing two sessions: their steps aligned by kind, name and order, and what differs. Pure.

The alignment is a sequence alignment, so one inserted retry shows as one inserted row instead of
shifting every later step: a longest common subsequence of (kind, name) keys anchors it, and
each stretch between anchors is aligned by Needleman-Wunsch with costs (a gap costs 1, a
step of the same kind under another name 1.5 plus a little per other difference, steps of
different kinds never pair). Messages between agents are aligned the same way, by sender and
receivers.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# Steps (and messages) compared per session, on the page and in the API: past it a page of
# aligned rows costs more to render than to compute (bench/README.md).
STEP_LIMIT = 2000
GAP_COST = 1.0
RENAMED_COST = 1.5  # below two gaps: a step renamed in place pairs with its old self
DIFFERENCE_COST = 0.1  # per further material difference of a pair
NEVER = float("inf")
# Myers' diff stops past this many insertions and deletions (its time grows with their count).
MAX_EDITS = 800
# A stretch between anchors larger than this (cells) is not aligned cell by cell: its steps are
# paired in order where their keys allow and the rest are gaps, which keeps a 2,000-step session
# that shares nothing with the other one from costing seconds.
MAX_STRETCH_CELLS = 40_000
# Tokens, cost and latency are measurements: they differ when they change by at least this share.
RELATIVE_CHANGE = 0.10
# A latency change under this many ms is noise, whatever its share.
LATENCY_FLOOR_MS = 50.0
# Differences that make a pair diverge; the measurements are shown but do not.
MATERIAL_FIELDS = ("name", "model", "prompt", "output", "status", "error")
MEASURE_FIELDS = ("tokens", "cost", "latency")

Operation = Literal["same", "changed", "inserted", "deleted"]


@dataclass(frozen=True)
class Step:
    """One span of a session as the comparison sees it.

    `kind` is the framework's detailed kind (agent, task, workflow…) when it named one, else the
    span kind (llm, tool, action, error). `prompt_digest` and `output_digest` are digests of the
    prompt or tool params and of the completion or tool result ("" when absent); the previews
    are their first characters, to show.
    """

    pk: int
    kind: str
    name: str
    model: str = ""
    status: str = ""
    error: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    duration_ms: float | None = None
    prompt_digest: str = ""
    output_digest: str = ""
    prompt_preview: str = ""
    output_preview: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)

    @property
    def tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(frozen=True)
class Difference:
    """One field of an aligned pair that differs: its value in session A and in session B."""

    field: str
    a: str
    b: str

    @property
    def is_material(self) -> bool:
        return self.field in MATERIAL_FIELDS


@dataclass(frozen=True)
class AlignedStep:
    """A row of the comparison: a step of A, of B, or of both, with what differs."""

    a: Step | None
    b: Step | None
    differences: tuple[Difference, ...] = ()

    @property
    def operation(self) -> Operation:
        if self.a is None:
            return "inserted"
        if self.b is None:
            return "deleted"
        return "changed" if self.differences else "same"

    @property
    def is_divergent(self) -> bool:
        """An inserted or deleted step, or a pair with a material difference."""
        if self.a is None or self.b is None:
            return True
        return any(d.is_material for d in self.differences)

    @property
    def differing_fields(self) -> frozenset[str]:
        return frozenset(d.field for d in self.differences)


@dataclass(frozen=True)
class StepComparison:
    """The aligned rows, the index of the first divergent one (None when none diverges) and how
    many rows of each operation there are."""

    rows: tuple[AlignedStep, ...]
    first_divergence: int | None
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def is_identical(self) -> bool:
        return self.first_divergence is None and not self.counts.get("changed")


# --- The alignment -----------------------------------------------------------------------------


def align(
    a: Sequence[Hashable],
    b: Sequence[Hashable],
    *,
    pair_cost: Callable[[int, int], float],
) -> list[tuple[int | None, int | None]]:
    """Index pairs (i, j), (i, None) for a deleted item of `a`, (None, j) for an inserted one of
    `b`, in order; every index of both appears once.

    `a` and `b` are the items' keys. The anchors are a longest common subsequence of equal keys
    (`common_subsequence`); between anchors, Needleman-Wunsch with a gap cost of 1 and
    `pair_cost(i, j)` for pairing a[i] with b[j] (NEVER to forbid it).
    """
    pairs: list[tuple[int | None, int | None]] = []
    i = j = 0
    for x, y in [*common_subsequence(a, b), (len(a), len(b))]:
        pairs += _stretch(range(i, x), range(j, y), pair_cost)
        if x < len(a):
            pairs.append((x, y))
        i, j = x + 1, y + 1
    return pairs


def common_subsequence(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]]:
    """Index pairs of equal items, increasing in both: a longest common subsequence (Myers'
    O((n + m) d) diff, d the number of insertions and deletions) while d stays within
    MAX_EDITS; beyond, difflib's matching blocks (greedy, so a repeating loop of steps may pair
    off by a period, but two sessions that different are not read step by step anyway)."""
    # Diffed back to front, so that of two equal candidates the later one pairs: the attempt of
    # a retry that the run went on with pairs, and the failed attempt before it is the insertion.
    n, m = len(a), len(b)
    backwards = _myers_pairs(a[::-1], b[::-1])
    if backwards is not None:
        return [(n - 1 - i, m - 1 - j) for i, j in reversed(backwards)]
    matcher = difflib.SequenceMatcher(None, list(a), list(b), autojunk=False)
    return [
        (i + offset, j + offset)
        for i, j, size in matcher.get_matching_blocks()
        for offset in range(size)
    ]


def _myers_pairs(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int]] | None:
    """A longest common subsequence as index pairs by Myers' diff; None past MAX_EDITS."""
    trace = _myers_trace(a, b)
    if trace is None:
        return None
    pairs: list[tuple[int, int]] = []
    x, y = len(a), len(b)
    for d in range(len(trace) - 1, -1, -1):
        v, k = trace[d], x - y
        previous_k = k + 1 if k == -d or (k != d and v[k - 1] < v[k + 1]) else k - 1
        previous_x = v[previous_k]
        previous_y = previous_x - previous_k
        while x > previous_x and y > previous_y:
            x, y = x - 1, y - 1
            pairs.append((x, y))
        x, y = previous_x, previous_y
    pairs.reverse()
    return pairs


def _myers_trace(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[dict[int, int]] | None:
    """The furthest x reached on each diagonal k = x - y before each edit count d, up to the
    d that reaches the end; None past MAX_EDITS."""
    n, m = len(a), len(b)
    v = {1: 0}
    trace = []
    for d in range(min(n + m, MAX_EDITS) + 1):
        trace.append(dict(v))
        for k in range(-d, d + 1, 2):
            x = v[k + 1] if k == -d or (k != d and v[k - 1] < v[k + 1]) else v[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x, y = x + 1, y + 1
            v[k] = x
            if x >= n and y >= m:
                return trace
    return None


def _stretch(
    a: range, b: range, pair_cost: Callable[[int, int], float]
) -> list[tuple[int | None, int | None]]:
    """Needleman-Wunsch over one stretch between anchors (global, linear gap cost)."""
    if not a or not b:
        return [(i, None) for i in a] + [(None, j) for j in b]
    if len(a) * len(b) > MAX_STRETCH_CELLS:
        return _greedy_stretch(a, b, pair_cost)
    n, m = len(a), len(b)
    cost = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        cost[i][0] = i * GAP_COST
    for j in range(1, m + 1):
        cost[0][j] = j * GAP_COST
    for i in range(1, n + 1):
        row, above = cost[i], cost[i - 1]
        for j in range(1, m + 1):
            row[j] = min(
                above[j - 1] + pair_cost(a[i - 1], b[j - 1]),
                above[j] + GAP_COST,
                row[j - 1] + GAP_COST,
            )
    return _trace_back(cost, a, b, pair_cost)


def _trace_back(
    cost: list[list[float]], a: range, b: range, pair_cost: Callable[[int, int], float]
) -> list[tuple[int | None, int | None]]:
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(a), len(b)
    while i or j:
        here = cost[i][j]
        if i and j and here == cost[i - 1][j - 1] + pair_cost(a[i - 1], b[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((a[i], b[j]))
        elif i and here == cost[i - 1][j] + GAP_COST:
            i -= 1
            pairs.append((a[i], None))
        else:
            j -= 1
            pairs.append((None, b[j]))
    pairs.reverse()
    return pairs


def _greedy_stretch(
    a: range, b: range, pair_cost: Callable[[int, int], float]
) -> list[tuple[int | None, int | None]]:
    """Pair items in order while they may pair; the rest of the longer side are gaps."""
    pairs: list[tuple[int | None, int | None]] = []
    for i, j in zip(a, b, strict=False):
        pairs += [(i, j)] if pair_cost(i, j) < NEVER else [(i, None), (None, j)]
    shorter = min(len(a), len(b))
    pairs += [(i, None) for i in a[shorter:]] + [(None, j) for j in b[shorter:]]
    return pairs


# --- Steps -------------------------------------------------------------------------------------


def step_differences(a: Step, b: Step) -> tuple[Difference, ...]:
    """What differs between two paired steps, material fields first (MATERIAL_FIELDS, then
    tokens, cost and latency when they change by RELATIVE_CHANGE or more)."""
    found: list[Difference] = []
    for name, left, right in (
        ("name", a.name, b.name),
        ("model", a.model, b.model),
        ("prompt", a.prompt_digest, b.prompt_digest),
        ("output", a.output_digest, b.output_digest),
        ("status", a.status, b.status),
        ("error", a.error, b.error),
    ):
        if left != right:
            found.append(_difference(name, a, b, left, right))
    if _changed(a.tokens, b.tokens):
        found.append(Difference("tokens", _text(a.tokens), _text(b.tokens)))
    if _changed(a.cost, b.cost):
        found.append(Difference("cost", _text(a.cost), _text(b.cost)))
    if _changed(a.duration_ms, b.duration_ms, floor=LATENCY_FLOOR_MS):
        found.append(Difference("latency", _text(a.duration_ms), _text(b.duration_ms)))
    return tuple(found)


def _difference(name: str, a: Step, b: Step, left: str, right: str) -> Difference:
    # Digests mean nothing to a reader: a content difference shows the previews.
    if name == "prompt":
        return Difference(name, a.prompt_preview, b.prompt_preview)
    if name == "output":
        return Difference(name, a.output_preview, b.output_preview)
    return Difference(name, left, right)


def _changed(left: float | None, right: float | None, *, floor: float = 0.0) -> bool:
    if left is None or right is None:
        return (left is None) != (right is None)
    change = abs(left - right)
    return change > floor and change >= RELATIVE_CHANGE * max(abs(left), abs(right))


def _text(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _step_pair_cost(a: Sequence[Step], b: Sequence[Step]) -> Callable[[int, int], float]:
    def pair_cost(i: int, j: int) -> float:
        left, right = a[i], b[j]
        if left.kind != right.kind:
            return NEVER
        material = sum(d.is_material for d in step_differences(left, right))
        if left.name != right.name:
            return RENAMED_COST + DIFFERENCE_COST * (material - 1)
        return DIFFERENCE_COST * material

    return pair_cost


def compare_steps(a: Sequence[Step], b: Sequence[Step]) -> StepComparison:
    """Align session A's steps with session B's (each in start order) and say what differs.

    Equal keys anchor the alignment; a pair's differences come from `step_differences`. The first
    divergence is the first row that is inserted, deleted or materially different.
    """
    pairs = align([s.key for s in a], [s.key for s in b], pair_cost=_step_pair_cost(a, b))
    rows = tuple(_aligned_step(a, b, i, j) for i, j in pairs)
    first = next((index for index, row in enumerate(rows) if row.is_divergent), None)
    counts = dict.fromkeys(("same", "changed", "inserted", "deleted"), 0)
    for row in rows:
        counts[row.operation] += 1
    return StepComparison(rows, first, counts)


def _aligned_step(
    a: Sequence[Step], b: Sequence[Step], i: int | None, j: int | None
) -> AlignedStep:
    left = a[i] if i is not None else None
    right = b[j] if j is not None else None
    if left is None or right is None:
        return AlignedStep(left, right)
    return AlignedStep(left, right, step_differences(left, right))


def preview_text(value: Any, *, max_chars: int) -> str:
    """What a reader recognises a prompt or output by, cut to `max_chars`: a string as is, the
    last message's content of a chat prompt (a list of {"role", "content"}), else compact JSON."""
    if value is None:
        return ""
    if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        value = value[-1]["content"]
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


# --- Messages and totals -----------------------------------------------------------------------


@dataclass(frozen=True)
class MessageItem:
    """One message between agents: sender and receivers by agent name, status, a preview."""

    pk: int
    sender: str
    receivers: tuple[str, ...]
    channel: str = ""
    status: str = ""
    preview: str = ""

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.sender, self.receivers)


@dataclass(frozen=True)
class AlignedMessage:
    a: MessageItem | None
    b: MessageItem | None
    differing_fields: frozenset[str] = frozenset()

    @property
    def operation(self) -> Operation:
        if self.a is None:
            return "inserted"
        if self.b is None:
            return "deleted"
        return "changed" if self.differing_fields else "same"


def compare_messages(a: Sequence[MessageItem], b: Sequence[MessageItem]) -> list[AlignedMessage]:
    """The two message sequences aligned by (sender, receivers); pairs name the fields of
    channel, status and preview that differ."""

    def pair_cost(i: int, j: int) -> float:
        return 0.0 if a[i].key == b[j].key else NEVER

    rows = []
    for i, j in align([m.key for m in a], [m.key for m in b], pair_cost=pair_cost):
        left = a[i] if i is not None else None
        right = b[j] if j is not None else None
        fields: frozenset[str] = frozenset()
        if left is not None and right is not None:
            fields = frozenset(
                name
                for name in ("channel", "status", "preview")
                if getattr(left, name) != getattr(right, name)
            )
        rows.append(AlignedMessage(left, right, fields))
    return rows


@dataclass(frozen=True)
class Totals:
    """A session's summary figures, compared side by side."""

    duration_ms: float | None
    tokens: int
    cost: float
    errors: int
    steps: int


@dataclass(frozen=True)
class TotalRow:
    label: str
    a: float | None
    b: float | None
    change: float | None  # b - a, None when either is unknown
    is_worse: bool  # B spent more (time, tokens, money) or failed more


def compare_totals(a: Totals, b: Totals) -> list[TotalRow]:
    """Duration, tokens, cost, errors and steps of A and B, with B's change from A."""
    rows = []
    for label, left, right in (
        ("duration_ms", a.duration_ms, b.duration_ms),
        ("tokens", a.tokens, b.tokens),
        ("cost", a.cost, b.cost),
        ("errors", a.errors, b.errors),
        ("steps", a.steps, b.steps),
    ):
        change = None if left is None or right is None else right - left
        worse = change is not None and change > 0 and label != "steps"
        rows.append(TotalRow(label, left, right, change, worse))
    return rows


@dataclass(frozen=True)
class SessionComparison:
    """Everything the comparison page and API show about two sessions A and B."""

    steps: StepComparison
    messages: tuple[AlignedMessage, ...]
    totals: tuple[TotalRow, ...]
    step_limit: int
    is_truncated_a: bool
    is_truncated_b: bool
    has_messages: bool


def compare_sessions(
    steps: tuple[Sequence[Step], Sequence[Step]],
    messages: tuple[Sequence[MessageItem], Sequence[MessageItem]],
    totals: tuple[Totals, Totals],
    *,
    step_limit: int,
) -> SessionComparison:
    """Compare A and B (each pair is (A's, B's)). Steps and messages past `step_limit` on either
    side are left out and the comparison says so: pass up to `step_limit + 1` to tell."""
    steps_a, steps_b = steps
    messages_a, messages_b = messages
    return SessionComparison(
        steps=compare_steps(steps_a[:step_limit], steps_b[:step_limit]),
        messages=tuple(compare_messages(messages_a[:step_limit], messages_b[:step_limit])),
        totals=tuple(compare_totals(*totals)),
        step_limit=step_limit,
        is_truncated_a=len(steps_a) > step_limit or len(messages_a) > step_limit,
        is_truncated_b=len(steps_b) > step_limit or len(messages_b) > step_limit,
        has_messages=bool(messages_a or messages_b),
    )
