from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_replicas')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ContextSummary',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('session', fields.ForeignKeyField('models.Session', source_field='session_id', db_constraint=True, to_field='id', related_name='summaries', on_delete=OnDelete.CASCADE)),
                ('thread_id', fields.UUIDField()),
                ('up_to_seq', fields.BigIntField()),
                ('content', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'context_summaries', 'app': 'models', 'indexes': [Index(fields=['thread_id', 'up_to_seq'])], 'pk_attr': 'id', 'table_description': "A thread's messages up to `up_to_seq`, summarized once for the model's context."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WalletMemory',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('app_id', fields.CharField(max_length=64)),
                ('public_key', fields.CharField(max_length=64)),
                ('source_session_id', fields.UUIDField()),
                ('session', fields.ForeignKeyField('models.Session', source_field='session_id', null=True, db_constraint=True, to_field='id', related_name='memories', on_delete=OnDelete.CASCADE)),
                ('content', fields.TextField(unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'wallet_memories', 'app': 'models', 'indexes': [Index(fields=['app_id', 'public_key', 'created_at'])], 'pk_attr': 'id', 'table_description': 'A short note of one finished turn, kept for the wallet in its app.'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Turn',
            name='prompt_messages',
            field=fields.IntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name='Turn',
            name='prompt_tokens',
            field=fields.IntField(default=0, db_default=0),
        ),
    ]
