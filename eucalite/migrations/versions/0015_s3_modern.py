"""Issue 17's Walrus columns: bucket default encryption, Object Lock (bucket configuration,
per-version retention and legal hold), ownership controls and Block Public Access; per
version and per multipart upload the server-side encryption, lock settings, and the
checksum type of an upload; per version the parts of a multipart object.

Revision ID: 0015_s3_modern
Revises: 0014_quota_creators
Create Date: 2026-12-05 19:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_s3_modern'
down_revision = '0014_quota_creators'
branch_labels = None
depends_on = None


def _lock_columns() -> list[sa.Column]:
    return [sa.Column('sse_json', sa.Text(), nullable=True),
            sa.Column('lock_mode', sa.String(length=16), nullable=True),
            sa.Column('lock_until', sa.DateTime(), nullable=True),
            sa.Column('legal_hold', sa.Boolean(), nullable=False, server_default=sa.false())]


def upgrade() -> None:
    with op.batch_alter_table('s3_buckets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encryption_json', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('object_lock_enabled', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column('object_lock_json', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('ownership', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('public_access_block_json', sa.Text(), nullable=True))
    with op.batch_alter_table('s3_objects', schema=None) as batch_op:
        for column in _lock_columns():
            batch_op.add_column(column)
        batch_op.add_column(sa.Column('parts_json', sa.Text(), nullable=True))
    with op.batch_alter_table('s3_uploads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('checksum_type', sa.String(length=16), nullable=True))
        for column in _lock_columns():
            batch_op.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table('s3_uploads', schema=None) as batch_op:
        for name in ('legal_hold', 'lock_until', 'lock_mode', 'sse_json', 'checksum_type'):
            batch_op.drop_column(name)
    with op.batch_alter_table('s3_objects', schema=None) as batch_op:
        for name in ('parts_json', 'legal_hold', 'lock_until', 'lock_mode', 'sse_json'):
            batch_op.drop_column(name)
    with op.batch_alter_table('s3_buckets', schema=None) as batch_op:
        for name in ('public_access_block_json', 'ownership', 'object_lock_json',
                     'object_lock_enabled', 'encryption_json'):
            batch_op.drop_column(name)
