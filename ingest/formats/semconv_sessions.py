"""What a session's root span says of its session: end state, tags, metadata, host. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.formats.semconv_values import Attributes, first_present, first_text, parse_json_text

MAX_TAG_CHARS = 200


SESSION_RESERVED_PREFIXES = ("agentops.", "operation.", "gen_ai.", "openinference.", "traceloop.")


HOST_PREFIXES = ("host.", "cpu.", "memory.")


HOST_RESOURCE_KEYS = ("imported_libraries", "service.name")


@dataclass(frozen=True, slots=True)
class SessionFields:
    """What an agentops session root span says about its session."""

    name: str
    tags: tuple[str, ...]
    metadata: dict[str, Any]
    end_state: str
    end_state_reason: str | None


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
