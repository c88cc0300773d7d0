"""Print a captured run span by span: `<framework venv>/bin/python tests/frameworks/dump.py DIR`.

Needs opentelemetry-proto, which every framework venv has. For reading captures by eye (the
"attributes seen" lists in tests/fixtures/frameworks/README.md were made with it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def main(folder: Path, max_value: int = 120) -> None:
    index = json.loads((folder / "index.json").read_text())
    for request in index["requests"]:
        if not request["path"].endswith("/v1/traces"):
            print(f"== {request['file']} {request['path']} ({request['bytes']} bytes)")
            continue
        body = ExportTraceServiceRequest.FromString((folder / request["file"]).read_bytes())
        print(f"== {request['file']} {request['headers'].get('content-type')}")
        for resource_spans in body.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    row = MessageToDict(span)
                    print(
                        f"  [{scope_spans.scope.name}] {span.name!r} trace={span.trace_id.hex()[:8]}"
                        f" span={span.span_id.hex()[:8]} parent={span.parent_span_id.hex()[:8]}"
                        f" links={len(span.links)} status={span.status.code}"
                    )
                    for attribute in row.get("attributes", []):
                        value = json.dumps(attribute["value"])[:max_value]
                        print(f"      {attribute['key']} = {value}")


def summary(folder: Path) -> str:
    """Requests, spans, traces, and how many spans arrived before their parent."""
    index = json.loads((folder / "index.json").read_text())
    seen: set[bytes] = set()
    spans = early = 0
    traces: set[bytes] = set()
    for request in index["requests"]:
        if not request["path"].endswith("/v1/traces"):
            continue
        body = ExportTraceServiceRequest.FromString((folder / request["file"]).read_bytes())
        batch = [s for r in body.resource_spans for ss in r.scope_spans for s in ss.spans]
        ids = {s.span_id for s in batch}
        for span in batch:
            spans += 1
            traces.add(span.trace_id)
            parent = span.parent_span_id
            if parent and parent not in seen and parent not in ids:
                early += 1
        seen |= ids
    return (
        f"{folder.parent.name}/{folder.name}: {len(index['requests'])} requests, {spans} spans, "
        f"{len(traces)} traces, {early} spans exported before their parent"
    )


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        for name in sys.argv[2:]:
            print(summary(Path(name)))
    else:
        main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 120)
