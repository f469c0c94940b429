"""Cloud-bursting (issue 19): the burst targets (remote EC2 clouds, their credentials
sealed, image and instance-type maps, policy, health), and on each instance the target it
runs on and its remote id (both NULL for a local instance, as every existing one is).

Revision ID: 0021_burst
Revises: 0020_autoscaling
Create Date: 2026-12-06 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0021_burst'
down_revision = '0020_autoscaling'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'burst_targets',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('endpoint_url', sa.String(length=1024), nullable=False),
        sa.Column('region', sa.String(length=64), nullable=False),
        sa.Column('credentials', sa.Text(), nullable=False),
        sa.Column('image_map_json', sa.Text(), nullable=False),
        sa.Column('type_map_json', sa.Text(), nullable=False),
        sa.Column('policy', sa.String(length=16), nullable=False),
        sa.Column('accounts_json', sa.Text(), nullable=False),
        sa.Column('groups_json', sa.Text(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('last_contact', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=1024), nullable=True),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'))
    # plain ADD COLUMN (no table rebuild): instances' security-group memberships stay
    op.add_column('instances', sa.Column('burst_target', sa.String(length=64), nullable=True))
    op.add_column('instances', sa.Column('remote_id', sa.String(length=64), nullable=True))
    op.create_index('ix_instances_burst_target', 'instances', ['burst_target'])


def downgrade() -> None:
    op.drop_index('ix_instances_burst_target', table_name='instances')
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('remote_id')
        batch_op.drop_column('burst_target')
    op.drop_table('burst_targets')
