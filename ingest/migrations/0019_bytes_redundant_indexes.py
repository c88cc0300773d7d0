"""Drop the indexes no query needs (issue 15, bytes per span; bench/README.md "Bytes per span:
indexes and compression"): foreign-key indexes whose column starts another index of the table, and
the LIKE (varchar_pattern_ops) twins PostgreSQL gets of a CharField's db_index, which nothing
matches by pattern. The plain indexes of those CharFields come back under new names.

The indexes are dropped by name (IF EXISTS: SQLite has no LIKE twins), not by AlterField, which
on SQLite would copy each of these tables to drop one index.
"""

import django.db.models.deletion
from django.db import migrations, models

# (index, table, column, is a LIKE twin), as Django named them.
DROPPED = [
    ("ingest_agent_session_id_afb83a9c", "ingest_agent", "session_id", False),
    ("ingest_message_causation_id_fd8ffa5f", "ingest_message", "causation_id", False),
    ("ingest_message_causation_id_fd8ffa5f_like", "ingest_message", "causation_id", True),
    ("ingest_message_correlation_id_e2c116d0", "ingest_message", "correlation_id", False),
    ("ingest_message_correlation_id_e2c116d0_like", "ingest_message", "correlation_id", True),
    ("ingest_message_dead_letter_state_01b4cd2a", "ingest_message", "dead_letter_state", False),
    ("ingest_message_dead_letter_state_01b4cd2a_like", "ingest_message", "dead_letter_state", True),
    ("ingest_message_project_id_4465d81b", "ingest_message", "project_id", False),
    ("ingest_message_session_id_f4530afd", "ingest_message", "session_id", False),
    ("ingest_message_status_8048e789", "ingest_message", "status", False),
    ("ingest_message_status_8048e789_like", "ingest_message", "status", True),
    ("ingest_messageevent_message_id_0a1dc9b2", "ingest_messageevent", "message_id", False),
    ("ingest_messageevent_project_id_78b2e26f", "ingest_messageevent", "project_id", False),
    ("ingest_metricsample_project_id_f12d36bd", "ingest_metricsample", "project_id", False),
    ("ingest_receivedrecord_project_id_82d1e67a", "ingest_receivedrecord", "project_id", False),
    ("ingest_score_project_id_8a022d67", "ingest_score", "project_id", False),
    ("ingest_score_session_id_7a7591a6", "ingest_score", "session_id", False),
    ("ingest_session_end_state_5f918806", "ingest_session", "end_state", False),
    ("ingest_session_end_state_5f918806_like", "ingest_session", "end_state", True),
    ("ingest_session_group_key_7c865a30", "ingest_session", "group_key", False),
    ("ingest_session_group_key_7c865a30_like", "ingest_session", "group_key", True),
    ("ingest_session_parent_external_id_7d1a3714", "ingest_session", "parent_external_id", False),
    ("ingest_session_parent_external_id_7d1a3714_like", "ingest_session", "parent_external_id", True),
    ("ingest_session_project_id_6c7092ee", "ingest_session", "project_id", False),
    ("ingest_testresult_project_id_0ac7acc8", "ingest_testresult", "project_id", False),
    ("ingest_testresult_run_id_52771418", "ingest_testresult", "run_id", False),
    ("ingest_tracelink_project_id_e04540e7", "ingest_tracelink", "project_id", False),
    ("ingest_transcriptline_project_id_7378afb0", "ingest_transcriptline", "project_id", False),
    ("ingest_transcriptline_session_id_ae6cfe12", "ingest_transcriptline", "session_id", False),
    ("ingest_workflow_name_b7035aca", "ingest_workflow", "name", False),
    ("ingest_workflow_name_b7035aca_like", "ingest_workflow", "name", True),
    ("ingest_workflow_project_id_d75f1bf8", "ingest_workflow", "project_id", False),
    ("ingest_workflow_session_id_ab92ab44", "ingest_workflow", "session_id", False),
]


def drop_indexes(apps, schema_editor):
    for index, _table, _column, _like in DROPPED:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(index)}")


def restore_indexes(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    for index, table, column, like in DROPPED:
        if like and not postgresql:
            continue
        quote = schema_editor.quote_name
        opclass = " varchar_pattern_ops" if like else ""
        schema_editor.execute(
            f"CREATE INDEX {quote(index)} ON {quote(table)} ({quote(column)}{opclass})"
        )


class Migration(migrations.Migration):

    dependencies = [
        ('ingest', '0018_deferred_pending_requests'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(drop_indexes, restore_indexes)],
            state_operations=[
                migrations.AlterField(
                    model_name='agent',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='agents', to='ingest.session'),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='causation_id',
                    field=models.CharField(blank=True, help_text='The message that caused this one.', max_length=128),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='correlation_id',
                    field=models.CharField(blank=True, help_text='The message this one replies to.', max_length=128),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='dead_letter_state',
                    field=models.CharField(blank=True, choices=[('', 'not a dead letter'), ('open', 'Open'), ('resolved', 'Resolved'), ('requeued', 'Requeued'), ('recovered', 'Recovered')], default='', max_length=10),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='agent_messages', to='ingest.session'),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='status',
                    field=models.CharField(choices=[('created', 'Created'), ('sent', 'Sent'), ('delivered', 'Delivered'), ('received', 'Received'), ('processed', 'Processed'), ('failed', 'Failed'), ('retried', 'Retried'), ('dead_lettered', 'Dead Lettered'), ('expired', 'Expired')], default='created', max_length=20),
                ),
                migrations.AlterField(
                    model_name='messageevent',
                    name='message',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='ingest.message'),
                ),
                migrations.AlterField(
                    model_name='messageevent',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='metricsample',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='receivedrecord',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='score',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='score',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='scores', to='ingest.session'),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='end_state',
                    field=models.CharField(choices=[('running', 'Running'), ('success', 'Success'), ('fail', 'Fail'), ('indeterminate', 'Indeterminate')], default='running', max_length=20),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='group_key',
                    field=models.CharField(blank=True, max_length=200),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='parent_external_id',
                    field=models.CharField(blank=True, max_length=128),
                ),
                migrations.AlterField(
                    model_name='session',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='sessions', to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='testresult',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='testresult',
                    name='run',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='results', to='ingest.testrun'),
                ),
                migrations.AlterField(
                    model_name='tracelink',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='transcriptline',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='transcriptline',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='transcript', to='ingest.session'),
                ),
                migrations.AlterField(
                    model_name='workflow',
                    name='name',
                    field=models.CharField(blank=True, max_length=300),
                ),
                migrations.AlterField(
                    model_name='workflow',
                    name='project',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='ingest.project'),
                ),
                migrations.AlterField(
                    model_name='workflow',
                    name='session',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='workflows', to='ingest.session'),
                ),
            ],
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['correlation_id'], name='message_correlation'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['causation_id'], name='message_causation'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['status'], name='message_status'),
        ),
        migrations.AddIndex(
            model_name='message',
            index=models.Index(fields=['dead_letter_state'], name='message_dead_letter_state'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['end_state'], name='session_end_state'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['parent_external_id'], name='session_parent'),
        ),
        migrations.AddIndex(
            model_name='session',
            index=models.Index(fields=['group_key'], name='session_group_key'),
        ),
    ]
