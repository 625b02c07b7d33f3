from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0004_trusted_documents')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ClientSecret',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('app', fields.ForeignKeyField('models.App', source_field='app_id', db_constraint=True, to_field='name', related_name='client_secrets', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=128)),
                ('name', fields.CharField(max_length=64)),
                ('ciphertext', fields.BinaryField()),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_used_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'client_secrets', 'app': 'models', 'unique_together': (('app_id', 'client_id', 'name'),), 'indexes': [Index(fields=['expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProviderKey',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('app', fields.ForeignKeyField('models.App', source_field='app_id', db_constraint=True, to_field='name', related_name='provider_keys', on_delete=OnDelete.CASCADE)),
                ('client_id', fields.CharField(max_length=128)),
                ('provider', fields.CharField(max_length=32)),
                ('ciphertext', fields.BinaryField()),
                ('key_prefix', fields.CharField(max_length=16)),
                ('label', fields.CharField(default='', max_length=200)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'provider_keys', 'app': 'models', 'unique_together': (('app_id', 'client_id', 'provider'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Session',
            name='client_id',
            field=fields.CharField(null=True, max_length=128),
        ),
        ops.AddField(
            model_name='Session',
            name='legacy_id',
            field=fields.CharField(null=True, max_length=128),
        ),
    ]
