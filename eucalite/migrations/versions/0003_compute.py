"""Compute: images, instances, key pairs, tags, instance types and nodes.

Revision ID: 0003_compute
Revises: 0002_walrus
Create Date: 2026-11-25 13:56:10.758481
"""
from alembic import op
import sqlalchemy as sa


revision = '0003_compute'
down_revision = '0002_walrus'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('instance_types',
    sa.Column('name', sa.String(length=32), nullable=False),
    sa.Column('cpu', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('disk_gb', sa.Integer(), nullable=False),
    sa.Column('ordinal', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('nodes',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=255), nullable=False),
    sa.Column('hypervisor_uri', sa.String(length=255), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('cores', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('disk_gb', sa.Integer(), nullable=False),
    sa.Column('used_cores', sa.Integer(), nullable=False),
    sa.Column('used_memory_mb', sa.Integer(), nullable=False),
    sa.Column('used_disk_gb', sa.Integer(), nullable=False),
    sa.Column('last_seen', sa.DateTime(), nullable=False),
    sa.Column('last_chosen', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('tags',
    sa.Column('resource_id', sa.String(length=64), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('resource_type', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('resource_id', 'key')
    )
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.create_index('ix_tags_owner_key', ['owner_id', 'key'], unique=False)

    op.create_table('images',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.String(length=255), nullable=True),
    sa.Column('location', sa.String(length=1024), nullable=True),
    sa.Column('architecture', sa.String(length=16), nullable=False),
    sa.Column('kernel_id', sa.String(length=32), nullable=True),
    sa.Column('ramdisk_id', sa.String(length=32), nullable=True),
    sa.Column('root_device_name', sa.String(length=32), nullable=False),
    sa.Column('root_device_type', sa.String(length=16), nullable=False),
    sa.Column('virtualization_type', sa.String(length=16), nullable=False),
    sa.Column('is_public', sa.Boolean(), nullable=False),
    sa.Column('launch_permissions_json', sa.Text(), nullable=True),
    sa.Column('block_devices_json', sa.Text(), nullable=True),
    sa.Column('manifest_json', sa.Text(), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('instances',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('reservation_id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('requester_arn', sa.String(length=255), nullable=False),
    sa.Column('image_id', sa.String(length=32), nullable=False),
    sa.Column('kernel_id', sa.String(length=32), nullable=True),
    sa.Column('ramdisk_id', sa.String(length=32), nullable=True),
    sa.Column('instance_type', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.String(length=255), nullable=True),
    sa.Column('task', sa.String(length=32), nullable=True),
    sa.Column('key_name', sa.String(length=255), nullable=True),
    sa.Column('key_public', sa.Text(), nullable=True),
    sa.Column('security_groups_json', sa.Text(), nullable=True),
    sa.Column('user_data', sa.Text(), nullable=True),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('node_id', sa.String(length=64), nullable=True),
    sa.Column('launch_index', sa.Integer(), nullable=False),
    sa.Column('client_token', sa.String(length=64), nullable=True),
    sa.Column('launch_time', sa.DateTime(), nullable=False),
    sa.Column('terminated_at', sa.DateTime(), nullable=True),
    sa.Column('private_ip', sa.String(length=45), nullable=True),
    sa.Column('public_ip', sa.String(length=45), nullable=True),
    sa.Column('mac', sa.String(length=17), nullable=True),
    sa.Column('root_device_type', sa.String(length=16), nullable=False),
    sa.Column('root_device_name', sa.String(length=32), nullable=False),
    sa.Column('cpu', sa.Integer(), nullable=False),
    sa.Column('memory_mb', sa.Integer(), nullable=False),
    sa.Column('disk_gb', sa.Integer(), nullable=False),
    sa.Column('metadata_options_json', sa.Text(), nullable=True),
    sa.Column('attributes_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_id', 'client_token', 'launch_index')
    )
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index('ix_instances_owner_state', ['owner_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_instances_reservation_id'), ['reservation_id'], unique=False)

    op.create_table('key_pairs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('key_type', sa.String(length=16), nullable=False),
    sa.Column('fingerprint', sa.String(length=128), nullable=False),
    sa.Column('public_key', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('owner_id', 'name')
    )


def downgrade() -> None:
    op.drop_table('key_pairs')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_instances_reservation_id'))
        batch_op.drop_index('ix_instances_owner_state')

    op.drop_table('instances')
    op.drop_table('images')
    with op.batch_alter_table('tags', schema=None) as batch_op:
        batch_op.drop_index('ix_tags_owner_key')

    op.drop_table('tags')
    op.drop_table('nodes')
    op.drop_table('instance_types')
