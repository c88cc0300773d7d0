"""Every telemetry write: parsed records in, rows out, one transaction per batch.

A package of one concept a module: `batch` (the entry points), `ledger` (which records are new,
the claims of shared rows), `traces`, `sessions`, `agents` (the walk of stored traces), `spans`,
`scores`, `testruns`, `messages`, `workflows`, `dead_letters`, `rejections`, `replay`,
`redactors`, and `bulk`, the COPY/INSERT/UPDATE engine they share. The public names are
imported here, so `ingest.store.save_records` and the rest keep their one import path.
"""

from ingest.store.agents import DELEGATION_PREFIX, HANDOFF_PREFIX, TraceWalk
from ingest.store.batch import OUTAGE_ERRORS, save_records, save_records_or_reject
from ingest.store.bulk import COPY_TYPES
from ingest.store.dead_letters import claim_requeued_messages, requeue_messages, resolve_messages
from ingest.store.ledger import CLAIMED_KEYS, Claimed, ClaimedKeys, SaveResult, enter_request_key
from ingest.store.messages import MESSAGE_MERGE_FIELDS, MessageKey
from ingest.store.redactors import project_redactor, redacted_text
from ingest.store.rejections import save_rejections
from ingest.store.replay import ReplayOutcome, replay_rejection
from ingest.store.scores import SCORE_FIELDS, save_human_score
from ingest.store.sessions import SESSION_MERGE_FIELDS, TAKE_END, TAKE_NAME, UPDATE_STORED_SESSIONS
from ingest.store.spans import PAYLOAD_FIELDS, SPAN_COPY_COLUMNS, SPAN_MERGE_FIELDS
from ingest.store.testruns import TEST_RESULT_FIELDS, TEST_RUN_MERGE_FIELDS, TestRecord
from ingest.store.traces import (
    AUTOGEN_TEAM_PREFIX,
    DEFINITION_WINDOW,
    MAX_FOLLOWED_TRACES,
    TRACE_LOCK,
)
from ingest.store.workflows import (
    STEP_COPY_COLUMNS,
    STEP_MERGE_FIELDS,
    TAKE_WORKFLOW_END,
    UPDATE_STORED_WORKFLOWS,
    WORKFLOW_CHANGE_COLUMNS,
    WORKFLOW_END,
    WORKFLOW_MERGE_FIELDS,
    WORKFLOW_START,
    FlowRecord,
)

__all__ = [
    "AUTOGEN_TEAM_PREFIX",
    "CLAIMED_KEYS",
    "COPY_TYPES",
    "DEFINITION_WINDOW",
    "DELEGATION_PREFIX",
    "HANDOFF_PREFIX",
    "MAX_FOLLOWED_TRACES",
    "MESSAGE_MERGE_FIELDS",
    "OUTAGE_ERRORS",
    "PAYLOAD_FIELDS",
    "SCORE_FIELDS",
    "SESSION_MERGE_FIELDS",
    "SPAN_COPY_COLUMNS",
    "SPAN_MERGE_FIELDS",
    "STEP_COPY_COLUMNS",
    "STEP_MERGE_FIELDS",
    "TAKE_END",
    "TAKE_NAME",
    "TAKE_WORKFLOW_END",
    "TEST_RESULT_FIELDS",
    "TEST_RUN_MERGE_FIELDS",
    "TRACE_LOCK",
    "UPDATE_STORED_SESSIONS",
    "UPDATE_STORED_WORKFLOWS",
    "WORKFLOW_CHANGE_COLUMNS",
    "WORKFLOW_END",
    "WORKFLOW_MERGE_FIELDS",
    "WORKFLOW_START",
    "Claimed",
    "ClaimedKeys",
    "FlowRecord",
    "MessageKey",
    "ReplayOutcome",
    "SaveResult",
    "TestRecord",
    "TraceWalk",
    "claim_requeued_messages",
    "enter_request_key",
    "project_redactor",
    "redacted_text",
    "replay_rejection",
    "requeue_messages",
    "resolve_messages",
    "save_human_score",
    "save_records",
    "save_records_or_reject",
    "save_rejections",
]
