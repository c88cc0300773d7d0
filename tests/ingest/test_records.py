"""The record helpers the store uses on every record (pure)."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest

from ingest.formats.records import SessionScoped, with_session_id


@pytest.mark.parametrize("cls", SessionScoped.__constraints__, ids=lambda cls: cls.__name__)
def test_a_record_moved_to_another_session_keeps_every_other_field(cls: type) -> None:
    values = {f.name: f"{f.name} value" for f in fields(cls)}
    record = cls(**values)

    moved = with_session_id(record, "the linked session")

    assert moved == replace(record, session_id="the linked session")
    assert moved is not record
    assert record.session_id == "session_id value"
