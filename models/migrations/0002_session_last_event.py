from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    operations = [
        ops.AddField(
            model_name='Session',
            name='last_event_id',
            field=fields.BigIntField(default=0, db_default=0),
        ),
        # Sessions that already have system events: without this their unread
        # events would look read to the snapshot's shortcut.
        ops.RunSQL(
            "UPDATE sessions SET last_event_id = COALESCE("
            "(SELECT MAX(e.id) FROM system_events e WHERE e.session_id = sessions.id), 0)",
            reverse_sql="",
        ),
    ]
