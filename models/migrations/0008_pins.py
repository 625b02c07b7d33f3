from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0007_memory')]

    initial = False

    operations = [
        ops.RemoveIndex(
            model_name='Session',
            name=None,
            fields=['app_id', 'public_key', 'last_active_at'],
        ),
        ops.RemoveIndex(
            model_name='Session',
            name=None,
            fields=['app_id', 'last_active_at'],
        ),
        ops.AddField(
            model_name='Session',
            name='is_pinned',
            field=fields.BooleanField(default=False, db_default=False),
        ),
        ops.AddIndex(
            model_name='Session',
            index=Index(fields=['app_id', 'public_key', 'is_pinned', 'last_active_at']),
        ),
        ops.AddIndex(
            model_name='Session',
            index=Index(fields=['app_id', 'is_pinned', 'last_active_at']),
        ),
    ]
