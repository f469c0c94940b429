"""Storage controller: volumes, snapshots and snapshot chunks.

Revision ID: 0004_ebs
Revises: 0003_compute
Create Date: 2026-11-25 16:05:19.531303
"""
from alembic import op
import sqlalchemy as sa


revision = '0004_ebs'
down_revision = '0003_compute'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snapshots',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('volume_id', sa.String(length=32), nullable=False),
    sa.Column('volume_size_gb', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_message', sa.String(length=255), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('description', sa.String(length=255), nullable=False),
    sa.Column('started', sa.DateTime(), nullable=False),
    sa.Column('chunk_size', sa.Integer(), nullable=False),
    sa.Column('stored_bytes', sa.Integer(), nullable=False),
    sa.Column('create_volume_permissions_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.create_index('ix_snapshots_owner_state', ['owner_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_snapshots_volume_id'), ['volume_id'], unique=False)

    op.create_table('volumes',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('size_gb', sa.Integer(), nullable=False),
    sa.Column('zone', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('state_reason', sa.String(length=255), nullable=True),
    sa.Column('snapshot_id', sa.String(length=32), nullable=True),
    sa.Column('volume_type', sa.String(length=16), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('export_json', sa.Text(), nullable=True),
    sa.Column('instance_id', sa.String(length=32), nullable=True),
    sa.Column('device', sa.String(length=32), nullable=True),
    sa.Column('target', sa.String(length=8), nullable=True),
    sa.Column('attach_state', sa.String(length=16), nullable=True),
    sa.Column('attach_time', sa.DateTime(), nullable=True),
    sa.Column('delete_on_termination', sa.Boolean(), nullable=False),
    sa.Column('auto_enable_io', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volumes_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index('ix_volumes_owner_state', ['owner_id', 'state'], unique=False)

    op.create_table('snapshot_chunks',
    sa.Column('snapshot_id', sa.String(length=32), nullable=False),
    sa.Column('index', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['snapshot_id'], ['snapshots.id'], ),
    sa.PrimaryKeyConstraint('snapshot_id', 'index')
    )
    with op.batch_alter_table('snapshot_chunks', schema=None) as batch_op:
        batch_op.create_index('ix_snapshot_chunks_digest', ['digest'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('snapshot_chunks', schema=None) as batch_op:
        batch_op.drop_index('ix_snapshot_chunks_digest')

    op.drop_table('snapshot_chunks')
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.drop_index('ix_volumes_owner_state')
        batch_op.drop_index(batch_op.f('ix_volumes_instance_id'))

    op.drop_table('volumes')
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_snapshots_volume_id'))
        batch_op.drop_index('ix_snapshots_owner_state')

    op.drop_table('snapshots')
