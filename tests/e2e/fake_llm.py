"""An OpenAI-compatible chat-completions server on 127.0.0.1, standing in for the LLM provider.

It answers `POST /v1/chat/completions` the way the OpenAI API does (ids, `usage`, a system
fingerprint, `[DONE]`-terminated server-sent events with `stream: true` and a usage chunk when
`stream_options.include_usage` is set): a tool call when tools are offered and the last message is
the user's, otherwise a short answer that quotes the latest tool result. Token counts are computed
from the text, deterministically, and every answer is kept in `FakeLLM.completions` so a test can
compare what the provider said with what the observability server stored.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "gpt-4o-mini-2024-07-18"
SYSTEM_FINGERPRINT = "fp_fake0llm01"
# OpenAI counts about four characters per token, plus a few tokens of framing per message.
CHARS_PER_TOKEN = 4
TOKENS_PER_MESSAGE = 4


@dataclass(frozen=True)
class Completion:
    """What the fake provider answered to one request."""

    id: str
    model: str
    is_stream: bool
    prompt_tokens: int
    completion_tokens: int
    content: str | None
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass
class FakeLLM:
    """`with FakeLLM() as fake:` serves on `fake.url` (use `fake.url + "/v1"` as base_url)."""

    completions: list[Completion] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeLLM is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeLLM:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-llm", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def record(self, completion: Completion) -> None:
        with self._lock:
            self.completions.append(completion)


def count_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def prompt_tokens(request: dict[str, Any]) -> int:
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in request.get("messages", []):
        total += TOKENS_PER_MESSAGE + count_tokens(json.dumps(message.get("content") or ""))
        for call in message.get("tool_calls") or []:
            total += count_tokens(json.dumps(call))
    for tool in request.get("tools") or []:
        total += count_tokens(json.dumps(tool))
    return total


def wants_tool_call(request: dict[str, Any]) -> bool:
    messages = request.get("messages") or [{}]
    return bool(request.get("tools")) and messages[-1].get("role") == "user"


def tool_call_for(request: dict[str, Any]) -> dict[str, Any]:
    """A call of the first offered function, with its required arguments filled from the user's
    message: strings get the message's last capitalised word, as a model would pick a place."""
    function = request["tools"][0]["function"]
    schema = function.get("parameters") or {}
    user_text = str(request["messages"][-1].get("content") or "")
    names = re.findall(r"\b[A-Z][a-z]+\b", user_text)
    guess = names[-1] if names else "unknown"
    defaults = {"string": guess, "integer": 1, "number": 1.0, "boolean": True}
    properties = schema.get("properties") or {}
    arguments = {
        name: defaults.get(str(properties.get(name, {}).get("type")), guess)
        for name in schema.get("required") or list(properties)
    }
    return {
        "id": f"call_{uuid.uuid4().hex[:24]}",
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments)},
    }


def answer_text(request: dict[str, Any]) -> str:
    tool_results = [
        str(m.get("content")) for m in request.get("messages", []) if m.get("role") == "tool"
    ]
    if tool_results:
        return f"Here is what I found: {tool_results[-1]}. Enjoy your day!"
    user = [str(m.get("content")) for m in request.get("messages", []) if m.get("role") == "user"]
    question = user[-1] if user else "your question"
    return f"Short answer to {question!r}: it depends, but the usual choice works well."


def usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def make_completion(request: dict[str, Any]) -> Completion:
    call = tool_call_for(request) if wants_tool_call(request) else None
    content = None if call else answer_text(request)
    produced = json.dumps(call) if call else str(content)
    return Completion(
        id=f"chatcmpl-{uuid.uuid4().hex[:29]}",
        model=MODEL,
        is_stream=bool(request.get("stream")),
        prompt_tokens=prompt_tokens(request),
        completion_tokens=count_tokens(produced),
        content=content,
        tool_calls=(call,) if call else (),
    )


def completion_body(completion: Completion, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": completion.content,
        "refusal": None,
        "annotations": [],
    }
    if completion.tool_calls:
        message["tool_calls"] = list(completion.tool_calls)
    return {
        "id": completion.id,
        "object": "chat.completion",
        "created": created,
        "model": completion.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if completion.tool_calls else "stop",
            }
        ],
        "usage": usage(completion.prompt_tokens, completion.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def stream_chunks(
    completion: Completion, created: int, *, include_usage: bool
) -> list[dict[str, Any]]:
    """The chunks OpenAI streams: the role, the content a few characters at a time (or the tool
    call), a finish chunk, then (if asked) a usage chunk with no choices."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion.id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if include_usage:
            body["usage"] = None
        return body

    chunks = [chunk({"role": "assistant", "content": "", "refusal": None})]
    for i, call in enumerate(completion.tool_calls):
        chunks.append(chunk({"tool_calls": [{"index": i, **call}]}))
    text = completion.content or ""
    chunks += [chunk({"content": piece}) for piece in re.findall(r"\S+\s*|\s+", text)]
    chunks.append(chunk({}, "tool_calls" if completion.tool_calls else "stop"))
    if include_usage:
        last = chunk({})
        last["choices"] = []
        last["usage"] = usage(completion.prompt_tokens, completion.completion_tokens)
        chunks.append(last)
    return chunks


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLM
    server_version = "fake-llm/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test output is for the observability server."""

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._json(404, {"error": {"message": f"Unknown path {self.path}", "type": "invalid"}})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length))
            if not isinstance(request, dict) or not request.get("messages"):
                raise ValueError("messages is required")
        except ValueError as exc:
            self._json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        completion = make_completion(request)
        self.fake.record(completion)
        created = int(time.time())
        if not completion.is_stream:
            self._json(200, completion_body(completion, created))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        for chunk in stream_chunks(completion, created, include_usage=include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    # For re-capturing fixtures by hand (tests/fixtures/agentops/README.md): serve until Ctrl-C.
    with FakeLLM() as fake:
        print(f"fake OpenAI-compatible server on {fake.url}", flush=True)  # noqa: T201
        threading.Event().wait()
