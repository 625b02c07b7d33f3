from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0005_legacy_clients')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Replica',
            fields=[
                ('id', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64)),
                ('host', fields.CharField(max_length=255)),
                ('pid', fields.IntField()),
                ('started_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('subscribers', fields.IntField(default=0)),
                ('cached_sessions', fields.IntField(default=0)),
                ('running_turns', fields.IntField(default=0)),
            ],
            options={'table': 'replicas', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
