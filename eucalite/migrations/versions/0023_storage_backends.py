"""Storage backends: which backend holds each bucket's new objects and each volume's
blocks, and where each snapshot's data lives. Rows made before backends existed are on the
single-box defaults: files for buckets and volumes, chunks in the object store for
snapshots.

Revision ID: 0023_storage_backends
Revises: 0022_lifecycle_hooks
Create Date: 2026-12-06 09:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0023_storage_backends'
down_revision = '0022_lifecycle_hooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('s3_buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backend', sa.String(length=32), nullable=False,
                                      server_default='file'))
    with op.batch_alter_table('volumes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backend', sa.String(length=16), nullable=False,
                                      server_default='file'))
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('backend', sa.String(length=16), nullable=False,
                                      server_default='objectstore'))


def downgrade() -> None:
    for table in ('snapshots', 'volumes', 's3_buckets'):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('backend')
