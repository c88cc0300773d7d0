"""What an OTLP span's attributes mean: the kind of step and its mapped fields. Pure.

Understands agentops 0.4 (`agentops.*`, `operation.name`), the GenAI semantic conventions in both
generations (`gen_ai.prompt.N.*` and `gen_ai.input.messages`), OpenInference (`openinference.*`,
`llm.*`, `input.value`) and Traceloop/OpenLLMetry (`traceloop.*`, `llm.usage.*`). The rules follow
docs/agentops-protocol.md section 5; keys no rule reads are reported as unmapped, never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ingest.formats.semconv_messages import (
    COMPLETION_FAMILIES,
    PROMPT_FAMILIES,
    _llm_params,
    completion_message,
    prompt_messages,
)
from ingest.formats.semconv_values import (
    COMPLETION_COST_KEYS,
    PROMPT_COST_KEYS,
    TOTAL_COST_KEYS,
    Attributes,
    KeyMemo,
    first_count,
    first_present,
    first_text,
    parse_json_text,
    span_cost,
)

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
