"""The project's PII redactor (ingest/redaction.py), built from its settings, for the store and
for text kept outside records.
"""

from __future__ import annotations

from ingest.models import (
    Project,
)
from ingest.redaction import CustomPattern, Redactor, redactor_for


def redacted_text(project: Project, text: str) -> str:
    """A text the project's redaction has passed over (unchanged when redaction is off)."""
    redactor = project_redactor(project)
    return text if redactor is None else redactor.text(text)[0]


def project_redactor(project: Project) -> Redactor | None:
    """The project's PII redactor (ingest/redaction.py), or None when redaction is off."""
    if not project.is_redaction_enabled:
        return None
    custom = tuple(CustomPattern(p["name"], p["pattern"]) for p in project.redaction_patterns)
    return redactor_for(tuple(project.redaction_detectors), custom)
