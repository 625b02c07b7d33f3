from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0008_pins')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Feedback',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('app_id', fields.CharField(max_length=64)),
                ('session', fields.ForeignKeyField('models.Session', source_field='session_id', db_constraint=True, to_field='id', related_name='feedback', on_delete=OnDelete.CASCADE)),
                ('message', fields.ForeignKeyField('models.Message', source_field='message_id', db_constraint=True, to_field='id', related_name='feedback', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=128)),
                ('thumbs', fields.CharField(null=True, max_length=4)),
                ('stars', fields.SmallIntField(null=True)),
                ('comment', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'feedback', 'app': 'models', 'unique_together': (('message_id', 'client_id'),), 'indexes': [Index(fields=['app_id', 'id']), Index(fields=['session_id', 'id'])], 'pk_attr': 'id', 'table_description': "One client's rating of one assistant message: thumbs or stars, and a comment."},
            bases=['Model'],
        ),
    ]
