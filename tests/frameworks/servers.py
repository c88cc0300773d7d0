"""The two loopback servers a framework scenario talks to: a scripted OpenAI-compatible LLM and an
OTLP/HTTP capture server that keeps every export request as it arrived.

The LLM is scripted so every multi-agent scenario ends after a fixed number of calls: an agent
offered tools first calls a hand-off tool (`transfer_to_*`, as OpenAI Agents names them), else
the first tool it has not called yet in this conversation, then answers in text (or through
smolagents' `final_answer` tool when that is offered; with CrewAI's ReAct prompt the answer is
"Final Answer: ..."). It speaks chat completions (plain and streamed, reusing the wire format of
tests/e2e/fake_llm.py) and the Responses API that OpenAI Agents uses by default. Stdlib only, so
the capture command runs with any Python 3.11.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.e2e.fake_llm import (
    MODEL,
    Completion,
    completion_body,
    count_tokens,
    prompt_tokens,
    stream_chunks,
)

FINAL_ANSWER_TOOL = "final_answer"
HANDOFF_PREFIXES = ("transfer_to_", "handoff_to_")
# Capitalised words of a prompt that are not what a tool argument is about.
STOP_WORDS = {"Current", "Task", "This", "Find", "What", "Write", "Customer", "How", "Here"}


def _tool_name(tool: dict[str, Any]) -> str:
    # chat completions nest the function; the Responses API does not.
    return str((tool.get("function") or tool).get("name") or "")


def _tool_schema(tool: dict[str, Any]) -> dict[str, Any]:
    return (tool.get("function") or tool).get("parameters") or {}


def _called_text(items: list[dict[str, Any]]) -> str:
    """Everything the assistant has said or called so far, to tell which tools it already used."""
    said = [
        item
        for item in items
        if item.get("role") == "assistant" or item.get("type") == "function_call"
    ]
    return json.dumps(said)


def _conversation_text(items: list[dict[str, Any]]) -> str:
    return json.dumps(items)


def _first_user_text(items: list[dict[str, Any]]) -> str:
    """The task as the user gave it: tool arguments are drawn from it, not from later turns."""
    for item in items:
        if item.get("role") == "user":
            return json.dumps(item.get("content"))
    return ""


def _last_result(items: list[dict[str, Any]]) -> str | None:
    for item in reversed(items):
        if item.get("role") == "tool" or item.get("type") == "function_call_output":
            return str(item.get("content") or item.get("output") or "")
    return None


def _arguments(tool: dict[str, Any], text: str, answer: str) -> dict[str, Any]:
    """Required arguments filled as a model would: strings get the answer or a topic word."""
    schema = _tool_schema(tool)
    properties = schema.get("properties") or {}
    names = [n for n in re.findall(r"\b[A-Z][a-z]{3,}\b", text) if n not in STOP_WORDS]
    topic = names[-1] if names else "topic"
    filled: dict[str, Any] = {}
    for name in schema.get("required") or list(properties):
        kind = str((properties.get(name) or {}).get("type"))
        if name in ("answer", "final_answer"):
            filled[name] = answer
        elif kind == "integer":
            filled[name] = 1
        elif kind == "number":
            filled[name] = 1.0
        elif kind == "boolean":
            filled[name] = True
        elif name == "coworker":
            # CrewAI lists the coworkers a task can be delegated to in the tool's description.
            listed = re.search(
                r"coworkers: ([^\n,]+)", str((tool.get("function") or tool).get("description"))
            )
            filled[name] = listed.group(1).strip() if listed else "unknown"
        elif kind in ("object", "array"):
            filled[name] = {} if kind == "object" else []
        else:
            filled[name] = topic
    return filled


@dataclass(frozen=True)
class Decision:
    tool: dict[str, Any] | None
    arguments: dict[str, Any]
    text: str | None


def decide(items: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Decision:
    conversation = _conversation_text(items)
    result = _last_result(items)
    answer = (
        f"Here is what I found: {result[:200]}. Done."
        if result
        else "Short answer: the usual choice works well. Done."
    )
    if "Final Answer:" in conversation and not tools:
        # CrewAI's ReAct prompt: only text in this format ends a task.
        return Decision(None, {}, f"Thought: I now know the final answer\nFinal Answer: {answer}")
    called = _called_text(items)
    used = [
        t
        for t in tools
        if _tool_name(t) != FINAL_ANSWER_TOOL
        and not _tool_name(t).startswith(HANDOFF_PREFIXES)
        and (f'"{_tool_name(t)}"' in called or f"'{_tool_name(t)}'" in called)
    ]
    if used:
        # One tool call per agent: then it answers, so every scenario ends.
        tools = [t for t in tools if _tool_name(t) == FINAL_ANSWER_TOOL]
    # smolagents replays its calls as text with Python reprs: 'name' in single quotes.
    fresh = [
        t
        for t in tools
        if _tool_name(t) != FINAL_ANSWER_TOOL
        and f'"{_tool_name(t)}"' not in called
        and f"'{_tool_name(t)}'" not in called
    ]
    handoffs = [t for t in fresh if _tool_name(t).startswith(HANDOFF_PREFIXES)]
    chosen = next(iter(handoffs or fresh), None)
    if chosen is not None:
        return Decision(chosen, _arguments(chosen, _first_user_text(items), answer), None)
    final = [t for t in tools if _tool_name(t) == FINAL_ANSWER_TOOL]
    if final:
        return Decision(final[0], _arguments(final[0], _first_user_text(items), answer), None)
    return Decision(None, {}, answer)


@dataclass
class ScriptedLLM:
    """`with ScriptedLLM() as llm:` serves on `llm.url` (base_url is `llm.url + "/v1"`)."""

    completions: list[Completion] = field(default_factory=list)
    # Every request body as received, to see what a framework asks (capture.py --llm-log).
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "ScriptedLLM is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> ScriptedLLM:
        handler = type("Handler", (_LLMHandler,), {"llm": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def record(self, completion: Completion) -> None:
        with self._lock:
            self.completions.append(completion)


def chat_completion(request: dict[str, Any]) -> Completion:
    decision = decide(request.get("messages") or [], request.get("tools") or [])
    calls: tuple[dict[str, Any], ...] = ()
    if decision.tool is not None:
        calls = (
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {
                    "name": _tool_name(decision.tool),
                    "arguments": json.dumps(decision.arguments),
                },
            },
        )
    produced = json.dumps(calls[0]) if calls else str(decision.text)
    return Completion(
        id=f"chatcmpl-{uuid.uuid4().hex[:29]}",
        model=MODEL,
        is_stream=bool(request.get("stream")),
        prompt_tokens=prompt_tokens(request),
        completion_tokens=count_tokens(produced),
        content=decision.text,
        tool_calls=calls,
    )


def _response_items(request: dict[str, Any]) -> list[dict[str, Any]]:
    given = request.get("input")
    if isinstance(given, str):
        return [{"role": "user", "content": given}]
    return [item for item in given or [] if isinstance(item, dict)]


def responses_body(request: dict[str, Any], llm: ScriptedLLM) -> dict[str, Any]:
    """A Responses API answer (non-streamed): one function_call item or one assistant message."""
    items = _response_items(request)
    tools = [t for t in request.get("tools") or [] if t.get("type") == "function"]
    decision = decide(items, tools)
    prompt = count_tokens(json.dumps(items) + json.dumps(tools) + str(request.get("instructions")))
    if decision.tool is not None:
        output: dict[str, Any] = {
            "type": "function_call",
            "id": f"fc_{uuid.uuid4().hex[:24]}",
            "call_id": f"call_{uuid.uuid4().hex[:24]}",
            "name": _tool_name(decision.tool),
            "arguments": json.dumps(decision.arguments),
            "status": "completed",
        }
    else:
        output = {
            "type": "message",
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": decision.text, "annotations": []}],
        }
    completion_tokens = count_tokens(json.dumps(output))
    response_id = f"resp_{uuid.uuid4().hex[:24]}"
    llm.record(
        Completion(
            id=response_id,
            model=MODEL,
            is_stream=False,
            prompt_tokens=prompt,
            completion_tokens=completion_tokens,
            content=decision.text,
            tool_calls=(output,) if decision.tool is not None else (),
        )
    )
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "model": MODEL,
        "output": [output],
        "parallel_tool_calls": True,
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": request.get("tools") or [],
        "temperature": 1.0,
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + completion_tokens,
        },
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "metadata": {},
    }


class _LLMHandler(BaseHTTPRequestHandler):
    llm: ScriptedLLM

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
            return
        self._json(404, {"error": {"message": f"Unknown path {self.path}"}})

    def do_POST(self) -> None:
        path = self.path.split("?")[0].rstrip("/")
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            if not isinstance(request, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as exc:
            self._json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})
            return
        with self.llm._lock:
            self.llm.requests.append({"path": path, "body": request})
        if path == "/v1/responses":
            if request.get("stream"):
                self._json(400, {"error": {"message": "stream is not scripted for /responses"}})
                return
            self._json(200, responses_body(request, self.llm))
            return
        if path != "/v1/chat/completions" or not request.get("messages"):
            self._json(404, {"error": {"message": f"Unknown path or no messages: {self.path}"}})
            return
        completion = chat_completion(request)
        self.llm.record(completion)
        created = int(time.time())
        if not completion.is_stream:
            self._json(200, completion_body(completion, created))
            return
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.end_headers()
        for chunk in stream_chunks(completion, created, include_usage=include_usage):
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# Headers kept in the index: what tells the body's format; never credentials.
KEPT_HEADERS = ("content-type", "content-encoding", "user-agent")


@dataclass
class CaptureServer:
    """Answers every OTLP/HTTP POST with 200 and writes its body to `out/NNN-<signal>.bin`."""

    out: Path
    # Canned JSON answers by path (agentops 0.3.26 needs a jwt to go on); others get 200, empty.
    replies: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self._server is not None, "CaptureServer is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CaptureServer:
        self.out.mkdir(parents=True, exist_ok=True)
        handler = type("Handler", (_CaptureHandler,), {"capture": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def keep(self, path: str, headers: dict[str, str], body: bytes) -> None:
        signal = path.split("?")[0].rstrip("/").rsplit("/", 1)[-1] or "root"
        with self._lock:
            name = f"{len(self.requests) + 1:03d}-{signal}.bin"
            (self.out / name).write_bytes(body)
            self.requests.append(
                {
                    "file": name,
                    "path": path,
                    "bytes": len(body),
                    "headers": {k: v for k, v in headers.items() if k in KEPT_HEADERS},
                    "had_api_key": bool(
                        {"x-api-key", "authorization", "x-agentops-api-key"} & set(headers)
                    ),
                }
            )


class _CaptureHandler(BaseHTTPRequestHandler):
    capture: CaptureServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.capture.keep(self.path, headers, body)
        reply = self.capture.replies.get(self.path.split("?")[0])
        self.send_response(200)
        if reply is not None:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)
            return
        # An empty Export*ServiceResponse is an empty protobuf message.
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()
