"""DescribeInstances pages in the database: an index on (owner_id, launch_time, id), the
order pages are cut in, so a page after a key is an index range scan however many
instances the account has.

Revision ID: 0007_instance_paging
Revises: 0006_edge
Create Date: 2026-12-05
"""
from alembic import op


revision = '0007_instance_paging'
down_revision = '0006_edge'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.create_index('ix_instances_owner_launch', ['owner_id', 'launch_time', 'id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_index('ix_instances_owner_launch')
