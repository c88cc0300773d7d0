"""One rollup table: the rows by agent name (NamedRollup) become Rollup, and the rows by agent
id go. Every page, the anomalies and the refresh read the rows by name; the rows by id grew with
sessions (a new agent id per session) and were 11 % of the database per span (bench/README.md,
issue 15). `/api/v1/rollups/` serves the rows by name from now on."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0012_searchcost2_entry_no_fk_constraints"),
    ]

    operations = [
        migrations.DeleteModel(name="Rollup"),
        migrations.RenameModel(old_name="NamedRollup", new_name="Rollup"),
        migrations.RenameIndex(
            model_name="rollup", new_name="rollup_bucket", old_name="named_rollup_bucket"
        ),
        migrations.RemoveConstraint(model_name="rollup", name="named_rollup_unique"),
        migrations.AddConstraint(
            model_name="rollup",
            constraint=models.UniqueConstraint(
                fields=("project", "granularity", "bucket_start", "agent", "model", "tool", "kind"),
                name="rollup_unique",
            ),
        ),
        migrations.AlterField(
            model_name="rollup",
            name="agent",
            field=models.CharField(
                blank=True,
                help_text="Agent name, or the agent id of a nameless agent.",
                max_length=128,
            ),
        ),
    ]
