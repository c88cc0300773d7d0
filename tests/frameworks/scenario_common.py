"""Shared by the scenario scripts, which run inside each framework's own venv (not ours).

The exporter is configured the way a user configures it: OTLPSpanExporter() from the
opentelemetry-exporter-otlp-proto-http package, reading OTEL_EXPORTER_OTLP_ENDPOINT and
OTEL_EXPORTER_OTLP_HEADERS from the environment. SCENARIO_SPAN_PROCESSOR picks the processor:
"batched" (BatchSpanProcessor, a few export requests) or "simple" (SimpleSpanProcessor, one
request per span, sent as each span ends: children before their parents).
"""

from __future__ import annotations

import os
import sys

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

MODE = os.environ.get("SCENARIO_SPAN_PROCESSOR", "batched")
LLM_BASE_URL = os.environ.get("OPENAI_BASE_URL", "")
MODEL = "gpt-4o-mini-2024-07-18"


def span_processor():
    exporter = OTLPSpanExporter()
    if MODE == "simple":
        return SimpleSpanProcessor(exporter)
    if MODE == "batched":
        return BatchSpanProcessor(exporter)
    sys.exit(f"SCENARIO_SPAN_PROCESSOR must be batched or simple, not {MODE!r}")


def tracer_provider(service_name: str, *, set_global: bool = True) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(span_processor())
    if set_global:
        trace.set_tracer_provider(provider)
    return provider
