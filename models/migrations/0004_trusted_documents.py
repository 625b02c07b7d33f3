from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_turns')]

    initial = False

    operations = [
        ops.CreateModel(
            name='TrustedDocument',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('hash', fields.CharField(unique=True, max_length=64)),
                ('operation_hash', fields.CharField(db_index=True, max_length=64)),
                ('operation_name', fields.CharField(null=True, max_length=200)),
                ('body', fields.TextField(unique=False)),
                ('source', fields.CharField(default='', max_length=500)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'trusted_documents', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
