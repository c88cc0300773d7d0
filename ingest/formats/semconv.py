"""What an OTLP span's attributes mean: the kind of step and its mapped fields. Pure.

Understands agentops 0.4 (`agentops.*`, `operation.name`), the GenAI semantic conventions in both
generations (`gen_ai.prompt.N.*` and `gen_ai.input.messages`), OpenInference (`openinference.*`,
`llm.*`, `input.value`) and Traceloop/OpenLLMetry (`traceloop.*`, `llm.usage.*`). The rules follow
docs/agentops-protocol.md section 5; keys no rule reads are reported as unmapped, never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

Attributes = Mapping[str, Any]
V = TypeVar("V")

MAX_TAG_CHARS = 200
MAX_INT32 = 2**31 - 1
# The characters orjson accepts at the start of a document. Text starting otherwise (agentops
# task outputs are often plain sentences) is not parsed: a failed parse raises, which costs more.
JSON_FIRST_CHARACTERS = frozenset('{["-0123456789tfn \t\n\r')

# Detailed kinds (shown as attributes["observatory.kind"]) stored as llm or tool spans; every
# other detailed kind (workflow, agent, task, guardrail, chain, session, span...) is an action.
RECORD_KINDS = {"llm": "llm", "embedding": "llm", "tool": "tool", "tool_call_request": "tool"}

AGENTOPS_KINDS = {"tool.usage": "tool"}
OPENINFERENCE_KINDS = {
    "LLM": "llm",
    "EMBEDDING": "embedding",
    "TOOL": "tool",
    "AGENT": "agent",
    "CHAIN": "chain",
    "RETRIEVER": "retriever",
    "RERANKER": "reranker",
    "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator",
    "PROMPT": "prompt",
}
GENAI_OPERATIONS = {
    "chat": "llm",
    "text_completion": "llm",
    "generate_content": "llm",
    "completion": "llm",
    "embeddings": "embedding",
    "embedding": "embedding",
    "execute_tool": "tool",
    "invoke_agent": "agent",
    "create_agent": "agent",
}
# Enough to call a span without a declared kind an LLM call. gen_ai.system alone is not: mem0
# memory operations set it too (agentops-protocol.md 5.2).
LLM_MARKERS = (
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "llm.model_name",
    "llm.request.model",
)
LLM_MARKER_PREFIXES = ("gen_ai.prompt.", "gen_ai.completion.", "llm.input_messages.")

MODEL_KEYS = (
    "gen_ai.response.model",
    "gen_ai.request.model",
    "llm.model_name",
    "embedding.model_name",
    "llm.response.model",
    "llm.request.model",
)
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
PROMPT_TOKEN_KEYS = (
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.input_tokens",
    "llm.token_count.prompt",
    "llm.usage.prompt_tokens",
)
COMPLETION_TOKEN_KEYS = (
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.output_tokens",
    "llm.token_count.completion",
    "llm.usage.completion_tokens",
)
# Framework-reported cost wins over our estimate: pydantic-ai sends operation.cost (USD) per call.
TOTAL_COST_KEYS = (
    "gen_ai.usage.total_cost",
    "gen_ai.usage.cost",
    "llm.cost.total",
    "operation.cost",
)
PROMPT_COST_KEYS = ("gen_ai.usage.prompt_cost", "llm.cost.prompt")
COMPLETION_COST_KEYS = ("gen_ai.usage.completion_cost", "llm.cost.completion")
TOOL_NAME_KEYS = ("tool.name", "gen_ai.tool.name", "traceloop.entity.name", "operation.name")
# OpenInference's tool.parameters is the tool's JSON schema, not the call's arguments: last.
TOOL_INPUT_KEYS = (
    "agentops.tool.input",
    "gen_ai.tool.call.arguments",
    "traceloop.entity.input",
    "input.value",
    "tool.parameters",
)
TOOL_OUTPUT_KEYS = (
    "agentops.tool.output",
    "gen_ai.tool.call.result",
    "traceloop.entity.output",
    "output.value",
)
ENTITY_INPUT_KEYS = ("agentops.entity.input", "traceloop.entity.input", "input.value")
ENTITY_OUTPUT_KEYS = ("agentops.entity.output", "traceloop.entity.output", "output.value")
NAME_KEYS = ("operation.name", "traceloop.entity.name")
# What the framework calls its agent, best first: GenAI, OpenInference (agent.name; graph.node.id
# is CrewAI's role and OpenAI Agents' agent), agentops, traceloop, then GenAI's agent id.
AGENT_NAME_KEYS = (
    "gen_ai.agent.name",
    "agent.name",
    "graph.node.id",
    "operation.name",
    "traceloop.entity.name",
)
# smolagents names its agent spans "<agent name>.run" and puts no name attribute on them.
SMOLAGENTS_RUN_SUFFIX = ".run"
# AutoGen agent types are "<name>_<team uuid>" and ids "<type>/<instance key>".
_UUID_SUFFIX = re.compile(r"_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
FINISH_REASON_KEYS = ("gen_ai.response.finish_reasons", "llm.finish_reason")
RESPONSE_ID_KEYS = ("gen_ai.response.id",)

# Indexed attribute families: prefix -> what the rows under it are.
PROMPT_FAMILIES = ("gen_ai.prompt.", "llm.input_messages.", "llm.prompts.")
COMPLETION_FAMILIES = ("gen_ai.completion.", "llm.output_messages.", "llm.completions.")
PARAM_FAMILIES = ("gen_ai.request.", "llm.tools.", "llm.request.functions.")
FAMILIES = PROMPT_FAMILIES + COMPLETION_FAMILIES + PARAM_FAMILIES

MESSAGING_KEYS = (
    "messaging.system",
    "messaging.operation.type",
    "messaging.operation.name",
    "messaging.operation",
    "messaging.destination.name",
    "messaging.message.id",
    "messaging.message.conversation_id",
    "messaging.message.body.size",
    "messaging.batch.message_count",
    "gen_ai.agent.name",
)

KNOWN_KEYS = frozenset(
    (
        *LLM_MARKERS,
        *MODEL_KEYS,
        *PROVIDER_KEYS,
        *PROMPT_TOKEN_KEYS,
        *COMPLETION_TOKEN_KEYS,
        *TOTAL_COST_KEYS,
        *PROMPT_COST_KEYS,
        *COMPLETION_COST_KEYS,
        *TOOL_NAME_KEYS,
        *TOOL_INPUT_KEYS,
        *TOOL_OUTPUT_KEYS,
        *ENTITY_INPUT_KEYS,
        *ENTITY_OUTPUT_KEYS,
        *AGENT_NAME_KEYS,
        "agentops.span.kind",
        "agentops.tags",
        "openinference.span.kind",
        "traceloop.span.kind",
        "gen_ai.operation.name",
        "gen_ai.request.type",
        "llm.request.type",
        "gen_ai.usage.total_tokens",
        "llm.token_count.total",
        "llm.usage.total_tokens",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.call.id",
        "llm.invocation_parameters",
        "input.mime_type",
        "output.mime_type",
        "tool.call.id",
        "tool.call.type",
        "tool.description",
        "error.type",
        *FINISH_REASON_KEYS,
        *RESPONSE_ID_KEYS,
        "gen_ai.agent.id",
        "graph.node.parent_id",
        # Session attributes: they group traces into sessions (otlp.py, TraceLinkRecord).
        "session.id",
        "session_id",
        "gen_ai.conversation.id",
        # Messaging conventions: they become messages between agents (otlp_flows.py).
        *MESSAGING_KEYS,
        # Evaluation results: they become scores (formats/scores.py).
        "gen_ai.evaluation.name",
        "gen_ai.evaluation.score.value",
        "gen_ai.evaluation.score.label",
        "gen_ai.evaluation.explanation",
        "eval.name",
        "eval.score",
        "eval.label",
        "eval.explanation",
    )
)

SESSION_RESERVED_PREFIXES = ("agentops.", "operation.", "gen_ai.", "openinference.", "traceloop.")
HOST_PREFIXES = ("host.", "cpu.", "memory.")
HOST_RESOURCE_KEYS = ("imported_libraries", "service.name")


# Not frozen: one is built per span, and a frozen dataclass's __init__ sets each field through
# object.__setattr__ (3x slower). Treat as read-only.
@dataclass(slots=True)
class SpanMeaning:
    """The mapped fields of one span; `detail` is the fine kind, `kind` the stored one."""

    detail: str
    kind: str
    name: str
    model: str = ""
    provider: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    params: Any = None
    returns: Any = None
    prompt: Any = None
    completion: Any = None
    tool_call: dict[str, Any] | None = None
    unmapped_keys: tuple[str, ...] = ()
    # LLM calls: why the model stopped (a list, GenAI's array or OpenInference's one value) and
    # the provider's response id; stored as observatory.finish_reasons / observatory.response_id.
    finish_reasons: tuple[str, ...] = ()
    response_id: str = ""
    # The keys whose text this meaning moved into prompt, completion, params or returns (any of
    # them set): the stored attributes leave them out, as the payload holds them (PAYLOAD_TEXT).
    payload_keys: tuple[str, ...] = ()

    @property
    def is_cost_missing(self) -> bool:
        """An LLM call with token counts but no cost: the price table should fill it in."""
        has_tokens = self.prompt_tokens is not None or self.completion_tokens is not None
        return self.kind == "llm" and self.cost is None and has_tokens


class KeyMemo(dict[str, V]):
    """compute(key) memoised for attribute keys, which repeat across spans. Read by subscription,
    it costs less than a call to an lru_cache'd function, and this runs for every attribute of
    every span. When unique keys (ids in key names) fill it, it starts afresh."""

    def __init__(self, compute: Callable[[str], V], max_keys: int = 16384) -> None:
        super().__init__()
        self.compute = compute
        self.max_keys = max_keys

    def __missing__(self, key: str) -> V:
        if len(self) >= self.max_keys:
            self.clear()
        value = self[key] = self.compute(key)
        return value


@dataclass(frozen=True, slots=True)
class SessionFields:
    """What an agentops session root span says about its session."""

    name: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    end_state: str
    end_state_reason: str | None


def describe_span(name: str, attributes: Attributes) -> SpanMeaning:
    """Classify a span and map its attributes; never raises on unexpected values."""
    detail = detail_kind(name, attributes)
    kind = RECORD_KINDS.get(detail, "action")
    scan = _scan(attributes)
    # On a session root every key lands in the session's metadata.
    is_session = detail == "session"
    unmapped_keys = tuple(sorted(scan.unmapped)) if scan.unmapped and not is_session else ()
    if kind == "llm":
        meaning = _llm_meaning(name, attributes, detail, scan.families, unmapped_keys)
    elif detail == "tool_call_request":
        meaning = _tool_call_meaning(name, attributes, unmapped_keys)
    elif kind == "tool":
        meaning = _tool_meaning(name, attributes, unmapped_keys)
    else:
        meaning = _action_meaning(name, attributes, detail, unmapped_keys)
    if scan.payload and (
        meaning.prompt is not None
        or meaning.completion is not None
        or meaning.params is not None
        or meaning.returns is not None
    ):
        # An unmapped key is kept where it is shown (unmapped_keys), so never left out.
        meaning.payload_keys = tuple(key for key in scan.payload if key not in unmapped_keys)
    return meaning


def detail_kind(name: str, attributes: Attributes) -> str:
    """The fine kind: a declared kind first, then GenAI markers, then tool-call requests."""
    declared = _declared_kind(attributes)
    if declared:
        return declared
    inferred = _genai_kind(attributes)
    if inferred:
        return inferred
    if name.startswith("tool_call.") or "tool.name" in attributes:
        return "tool_call_request"
    return "span"


def _declared_kind(attributes: Attributes) -> str:
    kind = attributes.get("agentops.span.kind")
    if isinstance(kind, str) and kind and kind != "unknown":
        return AGENTOPS_KINDS.get(kind, kind)
    kind = attributes.get("openinference.span.kind")
    if isinstance(kind, str) and kind and kind.upper() != "UNKNOWN":
        return OPENINFERENCE_KINDS.get(kind.upper(), kind.lower())
    kind = attributes.get("traceloop.span.kind")
    if isinstance(kind, str) and kind and kind != "unknown":
        return kind
    return ""


def _genai_kind(attributes: Attributes) -> str:
    operation = attributes.get("gen_ai.operation.name")
    if isinstance(operation, str) and operation in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[operation]
    request_type = attributes.get("gen_ai.request.type") or attributes.get("llm.request.type")
    if request_type == "embedding":
        return "embedding"
    if not attributes.keys().isdisjoint(LLM_MARKERS) or request_type in ("chat", "completion"):
        return "llm"
    if any(key.startswith(LLM_MARKER_PREFIXES) for key in attributes):
        return "llm"
    return ""


@dataclass(slots=True)
class _Scan:
    families: dict[str, dict[str, Any]]  # e.g. {"gen_ai.prompt.": {"0.role": "user"}}
    unmapped: list[str]  # keys no rule reads
    payload: list[str]  # keys whose text may move into the payload (is_payload_text)


def _scan(attributes: Attributes) -> _Scan:
    """One pass over the keys, one table lookup each (_KEY_ROLES): indexed families grouped by
    prefix, the keys no rule reads, and the payload text keys."""
    grouped: dict[str, dict[str, Any]] = {}
    unmapped: list[str] = []
    payload: list[str] = []
    for key, value in attributes.items():
        family, row, is_payload = _KEY_ROLES[key]
        if family:
            rows = grouped.get(family)
            if rows is None:
                rows = grouped[family] = {}
            rows[row] = value
        elif family is None:
            unmapped.append(key)
        if is_payload:
            payload.append(key)
    return _Scan(grouped, unmapped, payload)


def _key_role(key: str) -> tuple[str | None, str, bool]:
    """(family, row, is payload text) of a key: "gen_ai.prompt.0.role" -> ("gen_ai.prompt.",
    "0.role", True); family "" for a key a rule reads, None for an unmapped one."""
    family = _key_family(key)
    return family, key[len(family) :] if family else "", is_payload_text(key)


def _key_family(key: str) -> str | None:
    """The family prefix of an indexed key, "" for a key a rule reads, None for an unmapped one."""
    if key in KNOWN_KEYS:
        return ""
    for prefix in FAMILIES:
        if key.startswith(prefix):
            return prefix
    if key.startswith(("trace.metadata.", "agentops.legacy.")) or _is_agentops_io(key):
        return ""
    return None


def _is_agentops_io(key: str) -> bool:
    return key.startswith("agentops.") and key.endswith((".input", ".output"))


# Attributes whose text is mapped into the payload's prompt, completion, params or returns: not
# stored a second time (they are the bulk of an LLM span).
PAYLOAD_TEXT_PREFIXES = (
    "gen_ai.prompt.",
    "gen_ai.completion.",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.system_instructions",
    "llm.input_messages.",
    "llm.output_messages.",
    "llm.prompts.",
    "llm.completions.",
    "input.value",
    "output.value",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "agentops.entity.input",
    "agentops.entity.output",
)


def is_payload_text(key: str) -> bool:
    return key.startswith(PAYLOAD_TEXT_PREFIXES) or _is_agentops_io(key)


# Keys repeat across spans (every LLM span has the same few dozen), so what each key is for is
# memoised: this runs for every attribute of every span and dominated the parse profile.
_KEY_ROLES = KeyMemo(_key_role)


def _llm_meaning(
    name: str,
    attributes: Attributes,
    detail: str,
    families: dict[str, dict[str, Any]],
    unmapped: tuple[str, ...],
) -> SpanMeaning:
    return SpanMeaning(
        detail=detail,
        kind="llm",
        name=name,
        model=first_text(attributes, MODEL_KEYS),
        provider=first_text(attributes, PROVIDER_KEYS),
        prompt_tokens=first_count(attributes, PROMPT_TOKEN_KEYS),
        completion_tokens=first_count(attributes, COMPLETION_TOKEN_KEYS),
        cost=span_cost(attributes),
        params=_llm_params(attributes, families),
        prompt=prompt_messages(attributes, families),
        completion=completion_message(attributes, families),
        unmapped_keys=unmapped,
        finish_reasons=finish_reasons(attributes),
        response_id=first_text(attributes, RESPONSE_ID_KEYS)[:200],
    )


def _tool_meaning(name: str, attributes: Attributes, unmapped: tuple[str, ...]) -> SpanMeaning:
    return SpanMeaning(
        detail="tool",
        kind="tool",
        name=first_text(attributes, TOOL_NAME_KEYS) or name,
        cost=span_cost(attributes),
        params=parse_json_text(first_present(attributes, TOOL_INPUT_KEYS)),
        returns=parse_json_text(first_present(attributes, TOOL_OUTPUT_KEYS)),
        unmapped_keys=unmapped,
    )


def _tool_call_meaning(name: str, attributes: Attributes, unmapped: tuple[str, ...]) -> SpanMeaning:
    tool_name = first_text(attributes, ("tool.name",)) or name.removeprefix("tool_call.")
    arguments = attributes.get("tool.parameters")
    call = {"id": attributes.get("tool.call.id"), "name": tool_name, "arguments": arguments}
    return SpanMeaning(
        detail="tool_call_request",
        kind="tool",
        name=tool_name,
        params=parse_json_text(arguments),
        tool_call=call,
        unmapped_keys=unmapped,
    )


def _action_meaning(
    name: str, attributes: Attributes, detail: str, unmapped: tuple[str, ...]
) -> SpanMeaning:
    if detail == "session":
        label = first_text(attributes, ("operation.name",)) or name.removesuffix(".session")
    elif detail == "agent":
        label = agent_name(name, attributes)
        if not label:
            # An AGENT span that names no agent is a tracing wrapper (OpenAI Agents' trace()).
            detail = "trace"
            label = name
    else:
        label = first_text(attributes, NAME_KEYS) or name
    return SpanMeaning(
        detail=detail,
        kind="action",
        name=label,
        params=parse_json_text(_kind_io(attributes, detail, "input", ENTITY_INPUT_KEYS)),
        returns=parse_json_text(_kind_io(attributes, detail, "output", ENTITY_OUTPUT_KEYS)),
        unmapped_keys=unmapped,
    )


def _kind_io(attributes: Attributes, detail: str, direction: str, fallback: tuple[str, ...]) -> Any:
    """agentops.<kind>.input/output (e.g. agentops.workflow.input), else the entity keys."""
    value = attributes.get(f"agentops.{detail}.{direction}")
    return value if value is not None else first_present(attributes, fallback)


def agent_name(span_name: str, attributes: Attributes) -> str:
    """The agent's name as its framework says it, "" when the span names no agent. Never the
    span name, except smolagents', whose "<name>.run" is its only statement of the name."""
    name = first_text(attributes, AGENT_NAME_KEYS)
    if name:
        return bare_agent_type(name)
    agent_id = first_text(attributes, ("gen_ai.agent.id",))
    if agent_id:
        return bare_agent_type(agent_id.split("/", 1)[0])
    if span_name.endswith(SMOLAGENTS_RUN_SUFFIX) and any(
        key.startswith("smolagents.") for key in attributes
    ):
        return span_name.removesuffix(SMOLAGENTS_RUN_SUFFIX)
    return ""


def bare_agent_type(value: str) -> str:
    """AutoGen's "researcher_<team uuid>" as "researcher": one name for every run."""
    return _UUID_SUFFIX.sub("", value)


def finish_reasons(attributes: Attributes) -> tuple[str, ...]:
    value = first_present(attributes, FINISH_REASON_KEYS)
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v)[:50] for v in value if v is not None)[:16]
    return (str(value)[:50],)


# --- scalar helpers ---------------------------------------------------------------------------


def first_present(attributes: Attributes, keys: tuple[str, ...]) -> Any:
    """The value of the first key present (and not empty)."""
    for key in keys:
        value = attributes.get(key)
        if value is not None and value != "":
            return value
    return None


def first_text(attributes: Attributes, keys: tuple[str, ...]) -> str:
    value = first_present(attributes, keys)
    return "" if value is None else str(value)


def first_count(attributes: Attributes, keys: tuple[str, ...]) -> int | None:
    """A token count from the first key that holds a whole number from 0 to 2**31-1."""
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            count = as_count(value)
            if count is not None:
                return count
    return None


def as_count(value: Any) -> int | None:
    if type(value) is int:  # the usual token count (bool is not int): no float round trip
        return value if 0 <= value <= MAX_INT32 else None
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int past 1e308
        return None
    if not 0 <= number <= MAX_INT32 or number != int(number):
        return None
    return int(number)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def span_cost(attributes: Attributes) -> float | None:
    """gen_ai.usage.total_cost (or llm.cost.total), else the sum of prompt and completion cost."""
    total = _first_number(attributes, TOTAL_COST_KEYS)
    if total is not None:
        return total
    prompt = _first_number(attributes, PROMPT_COST_KEYS)
    completion = _first_number(attributes, COMPLETION_COST_KEYS)
    if prompt is None and completion is None:
        return None
    return (prompt or 0.0) + (completion or 0.0)


def _first_number(attributes: Attributes, keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            number = as_number(value)
            if number is not None:
                return number
    return None


def parse_json_text(value: Any) -> Any:
    """A JSON string parsed (agentops writes inputs as JSON text), anything else unchanged."""
    if not isinstance(value, str) or not value or value[0] not in JSON_FIRST_CHARACTERS:
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


# --- messages -----------------------------------------------------------------------------------


def prompt_messages(attributes: Attributes, families: dict[str, dict[str, Any]]) -> Any:
    """The input messages as [{role, content, tool_calls?, tool_call_id?}], from any convention."""
    for prefix in PROMPT_FAMILIES:
        rows = families.get(prefix)
        if rows:
            return indexed_messages(rows)
    messages = genai_messages(attributes.get("gen_ai.input.messages"))
    if messages is not None:
        return _with_system_instructions(messages, attributes.get("gen_ai.system_instructions"))
    return parse_json_text(attributes.get("input.value"))


def completion_message(attributes: Attributes, families: dict[str, dict[str, Any]]) -> Any:
    """The first output choice as one message; further choices under "other_choices"."""
    choices: list[dict[str, Any]] | None = None
    for prefix in COMPLETION_FAMILIES:
        rows = families.get(prefix)
        if rows:
            choices = indexed_messages(rows)
            break
    if choices is None:
        choices = genai_messages(attributes.get("gen_ai.output.messages"))
    if not choices:
        return parse_json_text(attributes.get("output.value"))
    first = {"role": "assistant", **choices[0]}
    if len(choices) > 1:
        first["other_choices"] = choices[1:]
    return first


def indexed_messages(rows: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows like {"0.role": "user", "0.content": "hi", "1.tool_calls.0.id": "c"} as messages."""
    by_index: dict[int, dict[str, Any]] = {}
    for rest, value in rows.items():
        row = _SPLIT_ROWS[rest]
        if row is not None:
            fields = by_index.get(row[0])
            if fields is None:
                fields = by_index[row[0]] = {}
            fields[row[1]] = value
    return [_message_from_fields(by_index[index]) for index in sorted(by_index)]


def _split_row(rest: str) -> tuple[int, str] | None:
    """ "1.message.role" -> (1, "role"); None when the row has no index."""
    index, _, field = rest.partition(".")
    if not index.isdigit() or not field:
        return None
    return int(index), field.removeprefix("message.")


_SPLIT_ROWS = KeyMemo(_split_row)


def _message_from_fields(fields: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {}
    calls: dict[int, dict[str, Any]] = {}
    parts: dict[int, dict[str, Any]] = {}
    for field, value in fields.items():
        if "." not in field:  # role, content, finish_reason...: most fields
            message[field] = value
        elif field.startswith("tool_calls."):
            _add_indexed(calls, field[len("tool_calls.") :], value, ("tool_call.", "function."))
        elif field.startswith("contents."):
            _add_indexed(parts, field[len("contents.") :], value, ("message_content.",))
        else:
            message[field] = value
    if parts and "content" not in message:
        message["content"] = _content_from_parts([parts[i] for i in sorted(parts)])
    if calls:
        message["tool_calls"] = [_tool_call(calls[i]) for i in sorted(calls)]
    return message


def _add_indexed(
    into: dict[int, dict[str, Any]], rest: str, value: Any, strip: tuple[str, ...]
) -> None:
    index, _, field = rest.partition(".")
    for prefix in strip:
        field = field.removeprefix(prefix)
    into.setdefault(int(index) if index.isdigit() else 0, {})[field] = value


def _tool_call(fields: dict[str, Any]) -> dict[str, Any]:
    call = {
        "id": fields.get("id"),
        "name": fields.get("name"),
        "arguments": fields.get("arguments"),
    }
    if "arguments" not in fields and "arguments_json" in fields:
        call["arguments"] = fields["arguments_json"]
    return call


def _content_from_parts(parts: list[dict[str, Any]]) -> Any:
    """OpenInference content parts: joined text when all are text, else the parts."""
    if all(part.get("type", "text") == "text" for part in parts):
        return "\n".join(str(part.get("text", "")) for part in parts)
    return parts


def genai_messages(value: Any) -> list[dict[str, Any]] | None:
    """GenAI semconv (new generation) messages, a JSON string or array of {role, parts}."""
    value = parse_json_text(value)
    if not isinstance(value, list):
        return None
    return [_genai_message(item) for item in value if isinstance(item, dict)]


def _genai_message(item: dict[str, Any]) -> dict[str, Any]:
    parts = item.get("parts")
    if not isinstance(parts, list):
        return {key: value for key, value in item.items() if value is not None}
    message: dict[str, Any] = {"role": item.get("role")}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    others: list[Any] = []
    for part in parts:
        _add_genai_part(part, message, texts, calls, others)
    if texts:
        message["content"] = "\n".join(texts)
    if calls:
        message["tool_calls"] = calls
    if others:
        message["parts"] = others
    for key in ("finish_reason", "name"):
        if item.get(key) is not None:
            message[key] = item[key]
    return message


def _add_genai_part(
    part: Any,
    message: dict[str, Any],
    texts: list[str],
    calls: list[dict[str, Any]],
    others: list[Any],
) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        texts.append(str(part.get("content", "")))
    elif kind == "tool_call":
        calls.append(_tool_call(part))
    elif kind == "tool_call_response":
        message["tool_call_id"] = part.get("id")
        response = part.get("response")
        texts.append(response if isinstance(response, str) else _json_text(response))
    else:
        others.append(part)


def _with_system_instructions(messages: list[dict[str, Any]], instructions: Any) -> Any:
    parsed = parse_json_text(instructions)
    if isinstance(parsed, list):
        texts = [str(p.get("content", "")) for p in parsed if isinstance(p, dict)]
        return [{"role": "system", "content": "\n".join(texts)}, *messages]
    if isinstance(parsed, str) and parsed:
        return [{"role": "system", "content": parsed}, *messages]
    return messages


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _llm_params(attributes: Attributes, families: dict[str, dict[str, Any]]) -> Any:
    """Request parameters (gen_ai.request.* minus the model, the system, offered tools)."""
    params: dict[str, Any] = {}
    invocation = parse_json_text(attributes.get("llm.invocation_parameters"))
    if isinstance(invocation, dict):
        params.update(invocation)
    functions: dict[int, dict[str, Any]] = {}
    for rest, value in families.get("gen_ai.request.", {}).items():
        if rest.startswith("functions."):
            _add_indexed(functions, rest[len("functions.") :], value, ())
        elif rest != "model":
            params[rest] = value
    for rest, value in families.get("llm.request.functions.", {}).items():
        _add_indexed(functions, rest, value, ())
    if functions:
        params["functions"] = [_function(functions[i]) for i in sorted(functions)]
    tools = _tool_definitions(attributes, families)
    if tools:
        params["tools"] = tools
    system = first_text(attributes, ("gen_ai.system",))
    if system:
        params["system"] = system
    return params or None


def _function(fields: dict[str, Any]) -> dict[str, Any]:
    if "parameters" in fields:
        return {**fields, "parameters": parse_json_text(fields["parameters"])}
    return fields


def _tool_definitions(attributes: Attributes, families: dict[str, dict[str, Any]]) -> list[Any]:
    """OpenInference llm.tools.N.tool.json_schema or GenAI gen_ai.tool.definitions."""
    tools: dict[int, dict[str, Any]] = {}
    for rest, value in families.get("llm.tools.", {}).items():
        _add_indexed(tools, rest, value, ("tool.",))
    if tools:
        return [parse_json_text(tools[i].get("json_schema", tools[i])) for i in sorted(tools)]
    definitions = parse_json_text(attributes.get("gen_ai.tool.definitions"))
    return definitions if isinstance(definitions, list) else []


# --- sessions -----------------------------------------------------------------------------------


def normalize_end_state(raw: Any) -> str:
    """success/ok -> success; error/fail/failure -> fail; anything else or missing ->
    indeterminate (agentops drops the attribute whenever an enum was passed)."""
    text = str(raw).strip().lower() if raw is not None else ""
    if text in ("success", "ok", "succeeded"):
        return "success"
    if text in ("error", "fail", "failure", "failed"):
        return "fail"
    return "indeterminate"


def parse_tags(value: Any) -> tuple[str, ...]:
    """agentops.tags as a string array, or as the JSON string update_trace_metadata writes."""
    if isinstance(value, str):
        value = parse_json_text(value)
        if isinstance(value, str):
            value = [value]
    if not isinstance(value, list | tuple):
        return ()
    tags = (str(tag)[:MAX_TAG_CHARS] for tag in value if tag is not None and tag != "")
    return tuple(dict.fromkeys(tags))


def session_fields(span_name: str, attributes: Attributes, resource: Attributes) -> SessionFields:
    """The session an agentops root span describes (agentops-protocol.md 5.1)."""
    raw_state = attributes.get("agentops.session.end_state")
    metadata, host_env = _session_metadata(attributes)
    for key in HOST_RESOURCE_KEYS:
        if resource.get(key) is not None:
            host_env[key] = resource[key]
    if host_env:
        metadata["host_env"] = host_env
    if raw_state is not None:
        metadata["end_state_raw"] = raw_state
    reason = attributes.get("agentops.legacy.end_state_reason")
    return SessionFields(
        name=first_text(attributes, ("operation.name",)) or span_name.removesuffix(".session"),
        tags=parse_tags(first_present(attributes, ("agentops.tags", "tag.tags"))),
        metadata=metadata,
        end_state=normalize_end_state(raw_state),
        end_state_reason=None if reason is None else str(reason),
    )


def _session_metadata(attributes: Attributes) -> tuple[dict[str, Any], dict[str, Any]]:
    """trace.metadata.*, agentops.legacy.* (minus the reason), dict tags; host.*/cpu.*/memory.*"""
    metadata: dict[str, Any] = {}
    host_env: dict[str, Any] = {}
    for key, value in attributes.items():
        if key.startswith("trace.metadata."):
            metadata[key[len("trace.metadata.") :]] = value
        elif key.startswith("agentops.legacy."):
            if key != "agentops.legacy.end_state_reason":
                metadata[key[len("agentops.legacy.") :]] = value
        elif key.startswith(HOST_PREFIXES):
            host_env[key] = value
        elif not key.startswith(SESSION_RESERVED_PREFIXES) and key != "tag.tags":
            metadata[key] = value
    return metadata, host_env


# --- messages between agents: per-project mapping rules ---------------------------------------


@dataclass(frozen=True, slots=True)
class MessageRule:
    """Which span attributes carry a message's fields (ingest.models.MessageMappingRule).

    A span matches when its name is `span_name` (or the rule names none) and it carries both the
    sender and the receiver attribute."""

    name: str
    sender_attribute: str
    receiver_attribute: str
    content_attribute: str = ""
    span_name: str = ""
    channel_attribute: str = ""
    message_id_attribute: str = ""
    correlation_attribute: str = ""

    def matches(self, span_name: str, attributes: Attributes) -> bool:
        if self.span_name and span_name != self.span_name:
            return False
        return bool(attributes.get(self.sender_attribute)) and bool(
            attributes.get(self.receiver_attribute)
        )


# TaskWeaver's Session._send_message spans: one post between User, Planner and the workers.
TASKWEAVER_POST_RULE = MessageRule(
    name="taskweaver post",
    sender_attribute="in.from",
    receiver_attribute="in.recipient",
    content_attribute="in.message",
)
BUILTIN_MESSAGE_RULES = (TASKWEAVER_POST_RULE,)
