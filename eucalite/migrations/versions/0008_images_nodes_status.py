"""Issue 14's columns: images remember CopyImage's ClientToken, where they came from, their
ImdsSupport and deregistration protection; nodes carry their own overcommit ratios; nodes
and instances keep their status checks, so DescribeInstanceStatus reads the same after a
restart.

Revision ID: 0008_images_nodes_status
Revises: 0007_instance_paging
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0008_images_nodes_status'
down_revision = '0007_instance_paging'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('source_instance_id', sa.String(length=32),
                                      nullable=True))
        batch_op.add_column(sa.Column('source_image_id', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('imds_support', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('deregistration_protection', sa.String(length=32),
                                      nullable=False, server_default='disabled'))
        batch_op.add_column(sa.Column('deregistration_protected_until', sa.DateTime(),
                                      nullable=True))
    for table in ('nodes', 'instances'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'nodes':
                batch_op.add_column(sa.Column('cpu_overcommit', sa.Float(), nullable=True))
                batch_op.add_column(sa.Column('memory_overcommit', sa.Float(), nullable=True))
            batch_op.add_column(sa.Column('status_checked_at', sa.DateTime(), nullable=True))
            batch_op.add_column(sa.Column('status_impaired_since', sa.DateTime(),
                                          nullable=True))


def downgrade() -> None:
    for table in ('instances', 'nodes'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('status_impaired_since')
            batch_op.drop_column('status_checked_at')
            if table == 'nodes':
                batch_op.drop_column('memory_overcommit')
                batch_op.drop_column('cpu_overcommit')
    with op.batch_alter_table('images', schema=None) as batch_op:
        for column in ('deregistration_protected_until', 'deregistration_protection',
                       'imds_support', 'source_image_id', 'source_instance_id',
                       'client_token'):
            batch_op.drop_column(column)
