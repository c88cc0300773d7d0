"""The words a record may use are spelled the same by the SDK and the server.

The SDK is a separate package and cannot import the server's lists, so it keeps copies; a record
the SDK builds with a stage or state the server does not know would be refused at ingest. Pure.
"""

from __future__ import annotations

from ingest.formats import native, native_multiagent
from ingest.formats.records import MESSAGE_STAGES
from ingest.models import Message
from observatory_sdk import records as sdk


def test_the_sdk_and_the_server_know_the_same_message_stages_in_the_same_order() -> None:
    assert sdk.MESSAGE_STAGES == MESSAGE_STAGES
    assert tuple(Message.Stage.values) == MESSAGE_STAGES


def test_message_stage_names_keep_their_stored_values() -> None:
    assert Message.Stage.DEAD_LETTERED == "dead_lettered"
    assert Message.Stage.PROCESSED.label == "Processed"


def test_the_sdk_and_the_server_know_the_same_end_states() -> None:
    assert sdk.END_STATES == native.END_STATES
    assert sdk.WORKFLOW_END_STATES == native_multiagent.WORKFLOW_END_STATES
    assert sdk.STEP_END_STATES == native_multiagent.STEP_END_STATES
