"""Agent failure detectors: deterministic rules over a session's spans and transcript that catch
loops, repeated prompts, ping-pong between two agents, runaway delegation depth, message storms,
sessions that end without a final answer and tool-error retry storms. No LLM. Pure.

Content-free telemetry is the norm (OpenTelemetry GenAI instrumentations leave prompts and
completions out by default), so an LLM call's output tokens and finish reason count as an answer,
and inter-agent messages (OTLP messaging spans become Message rows) feed ping-pong and storms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

DETECTOR_SPAN_COLUMNS = [
    "session_id",
    "span_id",
    "parent_span_id",
    "kind",
    "name",
    "agent_external_id",
    "status",
    "started_at",
]
DETECTOR_LINE_COLUMNS = ["session_id", "role", "agent_external_id", "at"]
# Inter-agent messages: who sent one and when.
DETECTOR_MESSAGE_COLUMNS = ["session_id", "sender", "started_at"]
# LLM calls: whether a completion was recorded, the output tokens, the raw finish reasons.
LLM_CALL_COLUMNS = ["session_id", "has_completion", "completion_tokens", "finish_reasons"]
# Finish reasons of a call that answered (OpenAI/GenAI semconv "stop", Anthropic "end_turn"...).
ANSWER_FINISH_REASONS = frozenset({"stop", "end_turn", "stop_sequence", "complete", "completed"})
FLAG_COLUMNS = ["session_id", "detector", "detail", "evidence_count"]
# Detector -> the label of its badge.
DETECTORS = {
    "tool_loop": "tool loop",
    "repeated_prompt": "repeated prompt",
    "ping_pong": "ping-pong",
    "deep_delegation": "deep delegation",
    "message_storm": "message storm",
    "no_final_answer": "no final answer",
    "retry_storm": "retry storm",
}
ENDED_STATES = ("success", "fail", "indeterminate")
CHAT_ROLES = ("user", "assistant", "system", "agent")


@dataclass(frozen=True)
class DetectorSettings:
    loop_calls: int = 5  # the same tool with the same arguments this many times
    repeated_prompts: int = 4  # one agent sending the same prompt this many times
    ping_pong_turns: int = 10  # hand-offs back and forth between the same two agents
    max_depth: int = 8  # span tree levels
    storm_messages: int = 50  # transcript lines…
    storm_seconds: float = 10.0  # …within this many seconds
    retry_errors: int = 3  # consecutive failed calls of one tool (or LLM endpoint)


Flag = tuple[str, str, int]  # detector, detail, evidence count


@dataclass(frozen=True)
class SessionFrames:
    """One session's inputs, sorted by time."""

    spans: pd.DataFrame
    lines: pd.DataFrame
    messages: pd.DataFrame


_NO_MESSAGES = pd.DataFrame(columns=DETECTOR_MESSAGE_COLUMNS)
Detector = Callable[[SessionFrames, object, DetectorSettings], "Flag | None"]


def llm_call_answered(has_completion: object, completion_tokens: object, reasons: object) -> bool:
    """An LLM call answered if its completion was recorded, it produced output tokens, or it
    finished for a reason that means "done" (not length, content filter or error)."""
    if bool(has_completion):
        return True
    # NaN (a null from the database in a float column) compares False, as it should.
    if isinstance(completion_tokens, int | float) and completion_tokens > 0:
        return True
    if isinstance(reasons, str):
        reasons = [reasons]
    if isinstance(reasons, list | tuple):
        return any(str(reason).strip().lower() in ANSWER_FINISH_REASONS for reason in reasons)
    return False


def answered_sessions(calls: pd.DataFrame) -> set[int]:
    """The sessions among LLM_CALL_COLUMNS rows with at least one call that answered."""
    return {
        int(row.session_id)
        for row in calls.itertuples(index=False)
        if llm_call_answered(row.has_completion, row.completion_tokens, row.finish_reasons)
    }


def detect_failures(
    spans: pd.DataFrame,
    lines: pd.DataFrame,
    sessions: pd.DataFrame,
    *,
    messages: pd.DataFrame | None = None,
    settings: DetectorSettings | None = None,
) -> pd.DataFrame:
    """Every detector over every session in `sessions`.

    spans: DETECTOR_SPAN_COLUMNS plus args_hash and prompt_hash (digests of the params and the
    prompt; empty when absent). lines: DETECTOR_LINE_COLUMNS plus text_hash. sessions: id,
    end_state, has_completion (an LLM call of the session answered: see answered_sessions).
    messages: DETECTOR_MESSAGE_COLUMNS, inter-agent messages. Returns FLAG_COLUMNS, at most one
    row per session and detector, sorted by session and detector.
    """
    settings = settings or DetectorSettings()
    messages = _NO_MESSAGES if messages is None else messages
    empty_spans = pd.DataFrame(columns=[*DETECTOR_SPAN_COLUMNS, "args_hash", "prompt_hash"])
    empty_lines = pd.DataFrame(columns=[*DETECTOR_LINE_COLUMNS, "text_hash"])
    candidates = _candidates(spans, lines, messages, sessions, settings)
    rows = []
    if candidates:  # most batches: none, and no frame is sorted or sliced
        span_slices = _sorted_slices(_of(spans, candidates), ["started_at", "span_id"], empty_spans)
        line_slices = _sorted_slices(_of(lines, candidates), ["at"], empty_lines)
        message_slices = _sorted_slices(_of(messages, candidates), ["started_at"], _NO_MESSAGES)
    for session in sessions.itertuples(index=False):
        detectors = candidates.get(session.id, ())
        if not detectors:
            continue
        frames = SessionFrames(
            span_slices(session.id), line_slices(session.id), message_slices(session.id)
        )
        for detector in detectors:
            found = detector(frames, session, settings)
            if found is not None:
                rows.append((int(session.id), *found))
    frame = pd.DataFrame(rows, columns=FLAG_COLUMNS)
    return frame.sort_values(["session_id", "detector"]).reset_index(drop=True)


def _of(frame: pd.DataFrame, sessions: dict[object, list[Detector]]) -> pd.DataFrame:
    """The rows of these sessions."""
    if not len(frame):
        return frame
    return frame[frame["session_id"].isin(list(sessions))]


def _sorted_slices(
    frame: pd.DataFrame, by: list[str], empty: pd.DataFrame
) -> Callable[[object], pd.DataFrame]:
    """Each session's rows sorted by `by` (stable), as a function of the session id. One sort
    of the whole frame by session first and then `by` gives every session's rows in the order
    a stable sort of its own rows would, and a session's rows are then one slice."""
    if not len(frame):
        return lambda _: empty
    ordered = frame.sort_values(["session_id", *by], kind="stable")
    keys = ordered["session_id"].to_numpy()
    starts = {key: int(i) for i, key in reversed(list(enumerate(keys)))}
    stops = {key: int(i) + 1 for i, key in enumerate(keys)}
    return lambda key: ordered.iloc[starts[key] : stops[key]] if key in starts else empty


def _candidates(
    spans: pd.DataFrame,
    lines: pd.DataFrame,
    messages: pd.DataFrame,
    sessions: pd.DataFrame,
    cfg: DetectorSettings,
) -> dict[object, list[Detector]]:
    """The detectors that could flag each session, in _DETECTORS order: each one's necessary
    condition, counted over the whole batch at once. A detector left out would have returned
    None (its docstring's threshold cannot be met), so the flags are the same, for a fraction
    of the per-session work on healthy sessions (bench/followup_bench.py). Counted in plain
    Python over the columns: a pandas mask and groupby per condition cost ~1 ms each, most of
    the detectors' time on the few hundred rows of a small batch."""
    span_session, kind, name, agent, status, args, prompt = _columns(
        spans,
        "session_id",
        "kind",
        "name",
        "agent_external_id",
        "status",
        "args_hash",
        "prompt_hash",
    )
    line_session, role = _columns(lines, "session_id", "role")
    message_session, sender = _columns(messages, "session_id", "sender")
    loops: Counter[tuple[object, ...]] = Counter()
    prompts: Counter[tuple[object, ...]] = Counter()
    span_count: Counter[object] = Counter()
    agent_turns: Counter[object] = Counter()
    errors: Counter[object] = Counter()
    has_llm: set[object] = set()
    for session, k, n, a, st, arg, p in zip(
        span_session, kind, name, agent, status, args, prompt, strict=True
    ):
        span_count[session] += 1
        if a:  # ping_pong keeps the truthy ones (`if a`)
            agent_turns[session] += 1
        if k == "tool" and arg != "" and _is_key(n) and _is_key(arg):
            loops[session, n, arg] += 1
        elif k == "llm":
            has_llm.add(session)
            if p != "" and _is_key(a) and _is_key(p):
                prompts[session, a, p] += 1
        if k in ("tool", "llm") and st == "error":
            errors[session] += 1
    sender_turns = Counter(s for s, who in zip(message_session, sender, strict=True) if who)
    storm = Counter(s for s, r in zip(line_session, role, strict=True) if r in CHAT_ROLES)
    storm.update(message_session)
    asked = {s for s, r in zip(line_session, role, strict=True) if r == "user"} | has_llm
    answered = {s for s, r in zip(line_session, role, strict=True) if r == "assistant"}

    def at_least(counts: Counter[Any], least: float) -> set[object]:
        return {
            key[0] if isinstance(key, tuple) else key for key, n in counts.items() if n >= least
        }

    possible: dict[Detector, set[object]] = {
        tool_loop: at_least(loops, cfg.loop_calls),
        repeated_prompt: at_least(prompts, cfg.repeated_prompts),
        # A run of n alternations needs n + 1 turns, each a span's agent or a message's sender.
        ping_pong: {s for s, n in agent_turns.items() if n > cfg.ping_pong_turns}
        | {s for s, n in sender_turns.items() if n > cfg.ping_pong_turns},
        # n spans make a tree at most n deep, or 2n with a cycle (counted from the span count).
        deep_delegation: {s for s, n in span_count.items() if n > cfg.max_depth / 2},
        message_storm: at_least(storm, cfg.storm_messages),
        # Its whole rule, over the batch: ended, asked something, and nothing answered.
        no_final_answer: {
            row.id
            for row in sessions.itertuples(index=False)
            if getattr(row, "end_state", "") in ENDED_STATES
            and not bool(getattr(row, "has_completion", False))
        }
        & asked - answered,
        retry_storm: {s for s, n in errors.items() if n > cfg.retry_errors - 1},
    }
    found = {}
    for row in sessions.itertuples(index=False):
        detectors = [detector for detector in _DETECTORS if row.id in possible[detector]]
        if detectors:
            found[row.id] = detectors
    return found


def _columns(frame: pd.DataFrame, *names: str) -> list[list[Any]]:
    return [frame[name].tolist() for name in names]


def _is_key(value: object) -> bool:
    """Whether pandas' groupby keeps a row with this key (it drops None and NaN)."""
    return value is not None and value == value


def tool_loop(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """The same tool called with the same arguments loop_calls times or more."""
    spans = frames.spans
    tools = spans[(spans["kind"] == "tool") & (spans["args_hash"] != "")]
    if len(tools) == 0:
        return None
    counts = tools.groupby(["name", "args_hash"]).size()
    (name, _), calls = counts.idxmax(), int(counts.max())
    if calls < cfg.loop_calls:
        return None
    return "tool_loop", f"tool {name} was called {calls} times with the same arguments", calls


def repeated_prompt(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """One agent sending the same prompt to an LLM repeated_prompts times ("recursive thought")."""
    spans = frames.spans
    llm = spans[(spans["kind"] == "llm") & (spans["prompt_hash"] != "")]
    if len(llm) == 0:
        return None
    counts = llm.groupby(["agent_external_id", "prompt_hash"]).size()
    (agent, _), calls = counts.idxmax(), int(counts.max())
    if calls < cfg.repeated_prompts:
        return None
    who = f"agent {agent}" if agent else "an agent"
    return "repeated_prompt", f"{who} sent the same prompt {calls} times", calls


def ping_pong(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """The longest stretch in which work passes back and forth between the same two agents,
    in the spans (who worked) or in the inter-agent messages (who sent)."""
    span_agents = [a for a in frames.spans["agent_external_id"] if a]
    senders = [a for a in frames.messages["sender"] if a]
    best, pair, via = 0, ("", ""), "handed off to each other"
    for agents, how in ((span_agents, "handed off to each other"), (senders, "messaged back")):
        run, run_pair = _longest_alternation(agents)
        if run > best:
            best, pair, via = run, run_pair, how
    if best < cfg.ping_pong_turns:
        return None
    first, second = sorted(pair)
    if via == "messaged back":
        detail = f"agents {first} and {second} messaged each other back and forth {best} times"
    else:
        detail = f"agents {first} and {second} {via} {best} times in a row"
    return "ping_pong", detail, best


def _longest_alternation(agents: list[str]) -> tuple[int, tuple[str, str]]:
    """The longest run of turns alternating between two agents, and the pair."""
    turns = [a for i, a in enumerate(agents) if i == 0 or a != agents[i - 1]]
    best, best_pair, run = 0, ("", ""), 0
    for i in range(1, len(turns)):
        if i >= 2 and turns[i] == turns[i - 2]:
            run += 1
        else:
            run = 1
        if run > best:
            best, best_pair = run, (turns[i - 1], turns[i])
    return best, best_pair


def deep_delegation(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """A span tree deeper than max_depth levels (a cycle in parent ids counts as deep)."""
    spans = frames.spans
    parents = dict(zip(spans["span_id"], spans["parent_span_id"].fillna(""), strict=True))
    depths: dict[str, int] = {}
    for span_id in parents:
        chain: list[str] = []
        node = span_id
        while node in parents and node not in depths and node not in chain:
            chain.append(node)
            node = parents[node]
        base = depths.get(node, 0) if node not in chain else len(parents)
        for offset, member in enumerate(reversed(chain), start=1):
            depths[member] = base + offset
    deepest = max(depths.values(), default=0)
    if deepest <= cfg.max_depth:
        return None
    return (
        "deep_delegation",
        f"the span tree is {deepest} levels deep (limit {cfg.max_depth})",
        deepest,
    )


def message_storm(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """storm_messages or more chat lines and inter-agent messages within storm_seconds."""
    lines = frames.lines
    chat = lines.loc[lines["role"].isin(CHAT_ROLES), "at"]
    stamps = pd.concat([chat, frames.messages["started_at"]], ignore_index=True)
    if len(stamps) < cfg.storm_messages:
        return None
    times = pd.to_datetime(stamps, utc=True, format="mixed").sort_values().reset_index(drop=True)
    window = pd.Timedelta(seconds=cfg.storm_seconds)
    # For each message, how many start within the window that begins at it.
    ends = times.searchsorted(times + window, side="left")
    most = int((ends - times.index.to_numpy()).max())
    if most < cfg.storm_messages:
        return None
    return "message_storm", f"{most} messages within {cfg.storm_seconds:g} s", most


def no_final_answer(frames: SessionFrames, session: object, _cfg: DetectorSettings) -> Flag | None:
    """An ended session that was asked something (a user message or an LLM call) but has no
    assistant message and no LLM call that answered (a completion, output tokens or a "stop"
    finish reason; see llm_call_answered). Sessions of pure tool or action steps (a batch job, a
    test round) are not conversations and are not judged."""
    spans, lines = frames.spans, frames.lines
    end_state = getattr(session, "end_state", "")
    was_asked = (lines["role"] == "user").any() or (spans["kind"] == "llm").any()
    if end_state not in ENDED_STATES or not was_asked:
        return None
    if bool(getattr(session, "has_completion", False)) or (lines["role"] == "assistant").any():
        return None
    return (
        "no_final_answer",
        f"ended ({end_state}) with no assistant message and no LLM call that answered "
        "(no completion, no output tokens, no stop finish reason)",
        0,
    )


def retry_storm(frames: SessionFrames, _s: object, cfg: DetectorSettings) -> Flag | None:
    """retry_errors or more failed calls in a row of the same tool (or LLM endpoint)."""
    spans = frames.spans
    calls = spans[spans["kind"].isin(("tool", "llm"))]
    best, best_name = 0, ""
    for name, group in calls.groupby("name", sort=True):
        failed = (group["status"] == "error").to_numpy()
        run = longest = 0
        for is_failed in failed:
            run = run + 1 if is_failed else 0
            longest = max(longest, run)
        if longest > best:
            best, best_name = longest, str(name)
    if best < cfg.retry_errors:
        return None
    return "retry_storm", f"{best_name} failed {best} times in a row", best


_DETECTORS: tuple[Detector, ...] = (
    tool_loop,
    repeated_prompt,
    ping_pong,
    deep_delegation,
    message_storm,
    no_final_answer,
    retry_storm,
)
