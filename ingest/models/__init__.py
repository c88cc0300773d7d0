"""The telemetry system of record: projects and keys, sessions and their telemetry, the ingest
ledger, test runs, and multi-agent messages and workflows, a module each.

Ingest writes these tables (through ingest/store/); the API and dashboard only read them.
Every model is imported here, so `ingest.models.X` is each one's name for code and migrations.
"""

from ingest.models.ledger import (
    IngestRejection,
    PendingRequest,
    ReceivedRecord,
    UploadedObject,
)
from ingest.models.multiagent import (
    Message,
    MessageContent,
    MessageEvent,
    MessageMappingRule,
    Step,
    Workflow,
)
from ingest.models.projects import (
    ApiKey,
    AuditEntry,
    ErasureRequest,
    Membership,
    ModelPrice,
    Project,
    canonical_api_key,
    hash_api_key,
    new_webhook_secret,
)
from ingest.models.telemetry import (
    Agent,
    MetricSample,
    Score,
    Session,
    Span,
    SpanPayload,
    TraceLink,
    TranscriptLine,
)
from ingest.models.testruns import (
    TestResult,
    TestRun,
)

__all__ = [
    "Agent",
    "ApiKey",
    "AuditEntry",
    "ErasureRequest",
    "IngestRejection",
    "Membership",
    "Message",
    "MessageContent",
    "MessageEvent",
    "MessageMappingRule",
    "MetricSample",
    "ModelPrice",
    "PendingRequest",
    "Project",
    "ReceivedRecord",
    "Score",
    "Session",
    "Span",
    "SpanPayload",
    "Step",
    "TestResult",
    "TestRun",
    "TraceLink",
    "TranscriptLine",
    "UploadedObject",
    "Workflow",
    "canonical_api_key",
    "hash_api_key",
    "new_webhook_secret",
]
