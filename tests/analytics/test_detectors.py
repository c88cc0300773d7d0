"""analytics.detectors: each failure pattern injected into an otherwise healthy session. Pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.detectors import (
    _DETECTORS,
    DETECTOR_LINE_COLUMNS,
    DETECTOR_MESSAGE_COLUMNS,
    DETECTOR_SPAN_COLUMNS,
    DETECTORS,
    LLM_CALL_COLUMNS,
    DetectorSettings,
    SessionFrames,
    answered_sessions,
    detect_failures,
    llm_call_answered,
)

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SPAN_COLUMNS = [*DETECTOR_SPAN_COLUMNS, "args_hash", "prompt_hash"]
LINE_COLUMNS = [*DETECTOR_LINE_COLUMNS, "text_hash"]


class Session:
    """Builds one session's frames: spans one second apart, lines one second apart."""

    def __init__(self, session_id: int = 1, *, end_state: str = "success") -> None:
        self.session_id = session_id
        self.end_state = end_state
        self.spans: list[tuple[object, ...]] = []
        self.lines: list[tuple[object, ...]] = []
        self.has_completion = False

    def span(
        self,
        kind: str,
        name: str,
        *,
        agent: str = "planner",
        parent: str = "",
        status: str = "ok",
        args: str = "",
        prompt: str = "",
        at: datetime | None = None,
    ) -> str:
        span_id = f"s{len(self.spans)}"
        started = at or T0 + timedelta(seconds=len(self.spans))
        self.spans.append(
            (self.session_id, span_id, parent, kind, name, agent, status, started, args, prompt)
        )
        return span_id

    def line(self, role: str, *, at: datetime | None = None, agent: str = "") -> None:
        started = at or T0 + timedelta(seconds=len(self.lines))
        self.lines.append((self.session_id, role, agent, started, f"h{len(self.lines)}"))

    def healthy(self) -> Session:
        self.line("user")
        root = self.span("action", "plan")
        self.span("llm", "openai.chat", parent=root, prompt="p1")
        self.span("tool", "search", parent=root, args="a1")
        self.span("tool", "search", parent=root, args="a2", agent="researcher")
        self.span("llm", "openai.chat", parent=root, prompt="p2")
        self.line("assistant")
        self.has_completion = True
        return self


def flags(*sessions: Session) -> dict[str, tuple[str, int]]:
    spans = pd.DataFrame([row for s in sessions for row in s.spans], columns=SPAN_COLUMNS)
    lines = pd.DataFrame([row for s in sessions for row in s.lines], columns=LINE_COLUMNS)
    frame = pd.DataFrame(
        [(s.session_id, 1, s.end_state, s.has_completion) for s in sessions],
        columns=["id", "project_id", "end_state", "has_completion"],
    )
    found = detect_failures(spans, lines, frame)
    return {row.detector: (row.detail, row.evidence_count) for row in found.itertuples()}


def test_a_healthy_session_raises_no_flag() -> None:
    assert flags(Session().healthy()) == {}


def test_the_same_tool_with_the_same_arguments_five_times_is_a_loop() -> None:
    session = Session().healthy()
    for _ in range(5):
        session.span("tool", "web_fetch", args="same-url")

    assert flags(session)["tool_loop"] == (
        "tool web_fetch was called 5 times with the same arguments",
        5,
    )


def test_the_same_tool_with_different_arguments_is_not_a_loop() -> None:
    session = Session().healthy()
    for i in range(8):
        session.span("tool", "web_fetch", args=f"url-{i}")

    assert "tool_loop" not in flags(session)


def test_one_agent_sending_the_same_prompt_four_times_is_recursive_thought() -> None:
    session = Session().healthy()
    for _ in range(4):
        session.span("llm", "openai.chat", agent="thinker", prompt="same")

    detail, count = flags(session)["repeated_prompt"]
    assert (detail, count) == ("agent thinker sent the same prompt 4 times", 4)


def test_two_agents_handing_off_back_and_forth_is_ping_pong() -> None:
    session = Session().healthy()
    for i in range(12):
        session.span("action", "delegate", agent="alice" if i % 2 else "bob")

    detail, count = flags(session)["ping_pong"]
    assert detail.startswith("agents alice and bob handed off to each other")
    assert count >= 10


def test_three_agents_taking_turns_is_not_ping_pong() -> None:
    session = Session().healthy()
    for i in range(15):
        session.span("action", "turn", agent=("a", "b", "c")[i % 3])

    assert "ping_pong" not in flags(session)


def test_a_span_tree_nine_levels_deep_is_runaway_delegation() -> None:
    session = Session().healthy()
    parent = ""
    for _ in range(9):
        parent = session.span("action", "delegate", parent=parent)

    assert flags(session)["deep_delegation"] == (
        "the span tree is 9 levels deep (limit 8)",
        9,
    )


def test_a_cycle_in_parent_ids_does_not_hang_the_detector() -> None:
    session = Session()
    session.spans.append((1, "x", "y", "action", "a", "p", "ok", T0, "", ""))
    session.spans.append((1, "y", "x", "action", "b", "p", "ok", T0, "", ""))

    assert "deep_delegation" not in flags(session)


def test_fifty_messages_within_ten_seconds_are_a_storm() -> None:
    session = Session().healthy()
    for i in range(60):
        session.line("agent", at=T0 + timedelta(minutes=5, milliseconds=100 * i))

    detail, count = flags(session)["message_storm"]
    assert count == 60
    assert detail == "60 messages within 10 s"


def test_the_same_messages_spread_over_minutes_are_no_storm() -> None:
    session = Session().healthy()
    for i in range(60):
        session.line("agent", at=T0 + timedelta(seconds=3 * i))

    assert "message_storm" not in flags(session)


def test_an_ended_session_without_an_assistant_message_has_no_final_answer() -> None:
    session = Session(end_state="fail")
    session.line("user")
    session.span("tool", "search", args="q")

    assert flags(session)["no_final_answer"][0] == (
        "ended (fail) with no assistant message and no LLM call that answered "
        "(no completion, no output tokens, no stop finish reason)"
    )


@pytest.mark.parametrize("end_state", ["running"])
def test_a_running_session_is_not_judged_for_its_final_answer(end_state: str) -> None:
    session = Session(end_state=end_state)
    session.line("user")

    assert "no_final_answer" not in flags(session)


def test_an_llm_completion_counts_as_a_final_answer() -> None:
    session = Session()
    session.span("llm", "openai.chat", prompt="p")
    session.has_completion = True

    assert "no_final_answer" not in flags(session)


def test_three_failed_calls_of_a_tool_in_a_row_are_a_retry_storm() -> None:
    session = Session().healthy()
    for _ in range(3):
        session.span("tool", "web_fetch", status="error", args="u")
    session.span("tool", "web_fetch", args="u")

    assert flags(session)["retry_storm"] == ("web_fetch failed 3 times in a row", 3)


def test_failures_with_successes_between_them_are_no_retry_storm() -> None:
    session = Session().healthy()
    for i in range(6):
        session.span("tool", "web_fetch", status="error" if i % 2 else "ok", args=str(i))

    assert "retry_storm" not in flags(session)


def test_each_session_gets_only_its_own_flags() -> None:
    looping = Session(1).healthy()
    for _ in range(5):
        looping.span("tool", "search", args="same")
    healthy = Session(2).healthy()
    spans = pd.DataFrame(looping.spans + healthy.spans, columns=SPAN_COLUMNS)
    lines = pd.DataFrame(looping.lines + healthy.lines, columns=LINE_COLUMNS)
    sessions = pd.DataFrame(
        [(1, 1, "success", True), (2, 1, "success", True)],
        columns=["id", "project_id", "end_state", "has_completion"],
    )

    found = detect_failures(spans, lines, sessions)

    assert list(found["session_id"]) == [1]


def test_a_session_of_tool_steps_only_is_not_judged_for_its_final_answer() -> None:
    session = Session(end_state="success")
    session.span("action", "run_test")
    session.span("tool", "http_get", args="u")

    assert "no_final_answer" not in flags(session)


def test_an_llm_call_with_output_tokens_but_no_content_answered() -> None:
    # OpenTelemetry GenAI instrumentations record no content by default.
    assert llm_call_answered(False, 42, None)


@pytest.mark.parametrize("reasons", [["stop"], ["end_turn"], "stop", ["tool_calls", "STOP"]])
def test_an_llm_call_that_finished_for_a_done_reason_answered(reasons: object) -> None:
    assert llm_call_answered(False, None, reasons)


@pytest.mark.parametrize(
    ("completion", "tokens", "reasons"),
    [(False, 0, ["length"]), (False, None, None), (False, float("nan"), []), (False, 0, "error")],
)
def test_an_llm_call_without_content_tokens_or_done_reason_did_not_answer(
    completion: bool, tokens: object, reasons: object
) -> None:
    assert not llm_call_answered(completion, tokens, reasons)


def test_answered_sessions_are_those_with_one_answering_call() -> None:
    calls = pd.DataFrame(
        [
            (1, False, 0, ["length"]),
            (1, False, 12, None),
            (2, False, 0, None),
            (3, True, None, None),
        ],
        columns=LLM_CALL_COLUMNS,
    )

    assert answered_sessions(calls) == {1, 3}


def messages_frame(*senders: str, session_id: int = 1, gap: float = 1.0) -> pd.DataFrame:
    rows = [(session_id, who, T0 + timedelta(seconds=gap * i)) for i, who in enumerate(senders)]
    return pd.DataFrame(rows, columns=DETECTOR_MESSAGE_COLUMNS)


def message_flags(session: Session, messages: pd.DataFrame) -> dict[str, tuple[str, int]]:
    spans = pd.DataFrame(session.spans, columns=SPAN_COLUMNS)
    lines = pd.DataFrame(session.lines, columns=LINE_COLUMNS)
    frame = pd.DataFrame(
        [(session.session_id, 1, session.end_state, session.has_completion)],
        columns=["id", "project_id", "end_state", "has_completion"],
    )
    found = detect_failures(spans, lines, frame, messages=messages)
    return {row.detector: (row.detail, row.evidence_count) for row in found.itertuples()}


def test_two_agents_alternating_twenty_messages_is_ping_pong() -> None:
    found = message_flags(Session().healthy(), messages_frame(*["critic", "writer"] * 10))

    assert found["ping_pong"] == (
        "agents critic and writer messaged each other back and forth 19 times",
        19,
    )


def test_a_short_exchange_of_messages_is_not_ping_pong() -> None:
    found = message_flags(Session().healthy(), messages_frame(*["critic", "writer"] * 3))

    assert "ping_pong" not in found


def test_messages_passed_round_three_agents_are_not_ping_pong() -> None:
    found = message_flags(Session().healthy(), messages_frame(*["a", "b", "c"] * 10))

    assert "ping_pong" not in found


def test_sixty_inter_agent_messages_within_a_few_seconds_are_a_storm() -> None:
    senders = [f"worker{i % 6}" for i in range(60)]
    found = message_flags(Session().healthy(), messages_frame(*senders, gap=0.1))

    # The session's user and assistant lines fall in the same seconds and count too.
    assert found["message_storm"] == ("62 messages within 10 s", 62)


def test_inter_agent_messages_spread_over_minutes_are_no_storm() -> None:
    senders = [f"worker{i % 6}" for i in range(60)]
    found = message_flags(Session().healthy(), messages_frame(*senders, gap=5.0))

    assert "message_storm" not in found


def test_a_cycle_of_five_parent_ids_counts_as_a_deep_tree() -> None:
    """Five spans alone (fewer than the depth limit) whose parents form a cycle: the cycle
    counts as deep as the span count on top of each span's place in it."""
    session = Session()
    for i in range(5):
        session.span("action", "loop", parent=f"s{(i + 4) % 5}")

    assert flags(session)["deep_delegation"][1] == 10


def every_detector_on_every_session(
    spans: pd.DataFrame, lines: pd.DataFrame, sessions: pd.DataFrame, messages: pd.DataFrame
) -> list[tuple[object, ...]]:
    """The flags of each detector run on each session's own sorted rows, none skipped."""

    def own(frame: pd.DataFrame, session_id: object, by: list[str]) -> pd.DataFrame:
        rows = frame[frame["session_id"] == session_id]
        return rows.sort_values(by, kind="stable")

    found = []
    for session in sessions.itertuples(index=False):
        frames = SessionFrames(
            own(spans, session.id, ["started_at", "span_id"]),
            own(lines, session.id, ["at"]),
            own(messages, session.id, ["started_at"]),
        )
        for detector in _DETECTORS:  # the list, not the skipping under test
            flag = detector(frames, session, DetectorSettings())
            if flag is not None:
                found.append((session.id, *flag))
    return sorted(found, key=lambda row: (row[0], row[1]))


def random_session(rng: random.Random, session_id: int) -> tuple[Session, list[tuple[object, ...]]]:
    """A session of 0-40 spans, lines and messages drawn from few names, agents, arguments and
    prompts, with errors, so that every detector fires on some sessions and not on others."""
    session = Session(session_id, end_state=rng.choice(["success", "fail", "", "running"]))
    session.has_completion = rng.random() < 0.5
    for _ in range(rng.randrange(0, 40)):
        parent = f"s{rng.randrange(len(session.spans))}" if session.spans else ""
        session.span(
            rng.choice(["tool", "llm", "action", "error"]),
            rng.choice(["search", "fetch", "chat"]),
            agent=rng.choice(["a", "b", ""]),
            parent=parent if rng.random() < 0.8 else "",
            status=rng.choice(["ok", "error", "ok"]),
            args=rng.choice(["", "x", "y"]),
            prompt=rng.choice(["", "p", "q"]),
            at=T0 + timedelta(seconds=rng.randrange(30)),
        )
    for _ in range(rng.choice([0, 3, 60])):
        session.line(
            rng.choice(["user", "assistant", "tool"]), at=T0 + timedelta(seconds=rng.randrange(12))
        )
    senders = [rng.choice(["a", "b"]) for _ in range(rng.choice([0, 5, 30]))]
    messages: list[tuple[object, ...]] = [
        (session_id, sender, T0 + timedelta(seconds=rng.random() * 20)) for sender in senders
    ]
    return session, messages


def test_the_flags_are_those_of_every_detector_run_on_every_session() -> None:
    """detect_failures skips the detectors a session cannot meet the threshold of: on 300
    random sessions its flags are exactly those of running all seven on each."""
    rng = random.Random(7)
    built = [random_session(rng, session_id) for session_id in range(1, 301)]
    sessions = [session for session, _ in built]
    spans = pd.DataFrame([row for s in sessions for row in s.spans], columns=SPAN_COLUMNS)
    lines = pd.DataFrame([row for s in sessions for row in s.lines], columns=LINE_COLUMNS)
    messages = pd.DataFrame(
        [row for _, rows in built for row in rows], columns=DETECTOR_MESSAGE_COLUMNS
    )
    frame = pd.DataFrame(
        [(s.session_id, 1, s.end_state, s.has_completion) for s in sessions],
        columns=["id", "project_id", "end_state", "has_completion"],
    )

    found = detect_failures(spans, lines, frame, messages=messages)

    expected = every_detector_on_every_session(spans, lines, frame, messages)
    assert [tuple(row) for row in found.itertuples(index=False)] == expected
    assert {row[1] for row in expected} == set(DETECTORS)  # every detector fired somewhere
