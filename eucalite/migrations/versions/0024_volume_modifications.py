"""Volume modifications: each volume's most recent ModifyVolume (size, type, IOPS and
throughput before and after, its state and progress), for DescribeVolumesModifications and
for a restart to finish one it interrupted.

Revision ID: 0024_volume_modifications
Revises: 0023_storage_backends
Create Date: 2026-12-06 11:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0024_volume_modifications'
down_revision = '0023_storage_backends'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'volume_modifications',
        sa.Column('volume_id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.String(length=12), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('status_message', sa.String(length=255), nullable=True),
        sa.Column('original_size', sa.Integer(), nullable=False),
        sa.Column('target_size', sa.Integer(), nullable=False),
        sa.Column('original_type', sa.String(length=16), nullable=False),
        sa.Column('target_type', sa.String(length=16), nullable=False),
        sa.Column('original_iops', sa.Integer(), nullable=True),
        sa.Column('target_iops', sa.Integer(), nullable=True),
        sa.Column('original_throughput', sa.Integer(), nullable=True),
        sa.Column('target_throughput', sa.Integer(), nullable=True),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('start_time', sa.DateTime(), nullable=False),
        sa.Column('end_time', sa.DateTime(), nullable=True),
        sa.Column('recent_starts_json', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('volume_id'),
    )
    with op.batch_alter_table('volume_modifications', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_volume_modifications_owner_id'), ['owner_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('volume_modifications', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_volume_modifications_owner_id'))
    op.drop_table('volume_modifications')
