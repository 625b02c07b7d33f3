"""The message tree (runtime/branches.py): each message follows a parent; a thread's
active path is its chosen children from the root down. Existing threads become a
single path: each message's parent is the one before it, and the last is the leaf.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_search')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Message',
            name='is_active',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='Message',
            name='is_selected',
            field=fields.BooleanField(default=True, db_default=True),
        ),
        ops.AddField(
            model_name='Message',
            name='parent_id',
            field=fields.UUIDField(null=True),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['thread_id', 'parent_id']),
        ),
        ops.AddField(
            model_name='Thread',
            name='leaf_id',
            field=fields.UUIDField(null=True),
        ),
        ops.AddField(
            model_name='Thread',
            name='leaf_parent_id',
            field=fields.UUIDField(null=True),
        ),
        ops.AlterField(
            model_name='Turn',
            name='message_id',
            field=fields.UUIDField(db_index=True),
        ),
        # Tortoise rebuilds the table on SQLite for this and loses its indexes (and
        # does not make the new one): made here, under the names it gives them.
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_turns_session_0f783a" '
            'ON turns (session_id, status, id); '
            'CREATE INDEX IF NOT EXISTS "idx_turns_status_fd4756" ON turns (status); '
            'CREATE INDEX IF NOT EXISTS "idx_turns_message_6a7c8a" ON turns (message_id)',
            reverse_sql="",
        ),
        # Correlated subqueries, not UPDATE ... FROM: the same text for both databases.
        ops.RunSQL(
            "UPDATE messages SET parent_id = (SELECT p.id FROM messages p "
            "WHERE p.thread_id = messages.thread_id AND p.seq < messages.seq "
            "ORDER BY p.seq DESC LIMIT 1)",
            reverse_sql="",
        ),
        ops.RunSQL(
            "UPDATE threads SET leaf_id = (SELECT m.id FROM messages m "
            "WHERE m.thread_id = threads.id ORDER BY m.seq DESC LIMIT 1), "
            "leaf_parent_id = (SELECT m.parent_id FROM messages m "
            "WHERE m.thread_id = threads.id ORDER BY m.seq DESC LIMIT 1)",
            reverse_sql="",
        ),
    ]
