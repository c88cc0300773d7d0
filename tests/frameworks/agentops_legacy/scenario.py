"""agentops 0.3.26 (the legacy SDK, before OpenTelemetry): one session with one action, configured
as its README said: agentops.init(api_key=..., endpoint=...). It talks JSON to /v2/*, not OTLP.

The key comes from AGENTOPS_API_KEY; 0.3.26 keeps it only if `uuid.UUID(key)` accepts it
(agentops/config.py, Configuration.configure), otherwise it logs "API Key is invalid: {key}" and
sends nothing at all.
"""

from __future__ import annotations

import os

import agentops
from agentops import ActionEvent

agentops.init(
    api_key=os.environ["AGENTOPS_API_KEY"],
    endpoint=os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"],
    auto_start_session=False,
    instrument_llm_calls=False,
)
session = agentops.start_session(tags=["legacy"])
print("session:", session)
if session is not None:
    session.record(ActionEvent(action_type="plan", params={"city": "Lisbon"}, returns="ok"))
    session.end_session("Success")
