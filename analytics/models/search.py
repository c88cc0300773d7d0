"""The search index's entries."""

from __future__ import annotations

from django.db import models

from ingest.models import Project, Session


class SearchEntry(models.Model):
    """One span, transcript line or message with text, as the full-text search index knows it
    (analytics/search.py keeps and reads it). The text itself is not copied here: PostgreSQL
    adds a `document` tsvector column with a GIN index, SQLite an FTS5 table keyed by this id
    (migration 0006), both of the strings this entry was the first of its session to say
    (analytics/search_text.py), and snippets are cut from the source rows."""

    class Kind(models.IntegerChoices):
        SPAN = 1
        LINE = 2
        MESSAGE = 3

    # Indexed by the Meta indexes that start with them, not by a copy each (issue 15). No
    # constraint in the database: its check of every entry written cost PostgreSQL ~6 µs a span
    # (bench/README.md, "Fourth pass"), and an entry is derived: deletes go through the ORM,
    # which cascades to it, and an entry of a session deleted while it was indexed is never
    # found (searches join the session) and goes with the raw retention.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    kind = models.SmallIntegerField(choices=Kind.choices)
    target_id = models.BigIntegerField(help_text="The span, transcript line or message id.")
    at = models.DateTimeField()
    signature = models.CharField(
        max_length=100,
        help_text="What changes when the text does (PostgreSQL: the row version of the text's "
        "row; SQLite: sizes and a prefix): unchanged text is not read again.",
    )
    strings = models.BinaryField(
        default=b"", help_text="Digests of every distinct string of its text (8 bytes each)."
    )
    said = models.BinaryField(
        default=b"",
        help_text="Digests of the strings it indexes: those no entry of its session said before.",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "target_id"], name="search_entry_unique"),
        ]
        indexes = [
            models.Index(fields=["session"], name="search_entry_session"),
            models.Index(fields=["project", "at"], name="search_entry_project_at"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.target_id}"
