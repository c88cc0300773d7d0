"""The chat messages of an LLM span, from whichever convention carries them: indexed
`gen_ai.prompt.N.*` / `llm.input_messages.N.*` rows, the newer `gen_ai.input.messages` JSON, tool
calls and definitions, the request parameters. Pure.
"""

from __future__ import annotations

from typing import Any

import orjson

from ingest.formats.semconv_values import Attributes, KeyMemo, first_text, parse_json_text

# Indexed attribute families: prefix -> what the rows under it are.
PROMPT_FAMILIES = ("gen_ai.prompt.", "llm.input_messages.", "llm.prompts.")


COMPLETION_FAMILIES = ("gen_ai.completion.", "llm.output_messages.", "llm.completions.")


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
