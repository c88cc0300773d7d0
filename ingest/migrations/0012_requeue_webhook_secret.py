"""Each project gets its own requeue webhook signing secret (existing ones included)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

import ingest.models


def give_each_project_its_own_secret(apps: Any, schema_editor: Any) -> None:
    # AddField evaluates a callable default once: every existing row would share one secret.
    Project = apps.get_model("ingest", "Project")
    for project in Project.objects.only("pk"):
        project.requeue_webhook_secret = ingest.models.new_webhook_secret()
        project.save(update_fields=["requeue_webhook_secret"])


class Migration(migrations.Migration):
    dependencies = [("ingest", "0011_audit_entries")]

    operations = [
        migrations.AddField(
            model_name="project",
            name="requeue_webhook_secret",
            field=models.CharField(
                default=ingest.models.new_webhook_secret,
                help_text="Signs the requeue webhook: X-Observatory-Signature (docs/ingest-api.md).",
                max_length=64,
            ),
        ),
        migrations.RunPython(give_each_project_its_own_secret, migrations.RunPython.noop),
    ]
