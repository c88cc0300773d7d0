"""Python client for Agent Observatory: batch agent telemetry to the native ingest API."""

from __future__ import annotations

from observatory_sdk.client import Client, ClientStats, Span
from observatory_sdk.context import current_session, current_session_id
from observatory_sdk.handler import StatusLineHandler
from observatory_sdk.messaging import RequeuePoller, TrackedMessage
from observatory_sdk.version import VERSION as __version__
from observatory_sdk.workflows import StepRun, WorkflowRun

__all__ = [
    "Client",
    "ClientStats",
    "RequeuePoller",
    "Span",
    "StatusLineHandler",
    "StepRun",
    "TrackedMessage",
    "WorkflowRun",
    "__version__",
    "current_session",
    "current_session_id",
]
