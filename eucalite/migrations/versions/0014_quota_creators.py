"""Issue 16's quotas: who created each volume, snapshot, elastic address, bucket, image and
instance (``creator_user_id``, the IAM user id; NULL for rows made before and for role
sessions), so a user's own quotas count what that user made (eucalite/quotas.py).

Revision ID: 0014_quota_creators
Revises: 0013_iam_policies_roles_sts
Create Date: 2026-12-05 16:45:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_quota_creators'
down_revision = '0013_iam_policies_roles_sts'
branch_labels = None
depends_on = None

TABLES = ('volumes', 'snapshots', 'addresses', 's3_buckets', 'images', 'instances')


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('creator_user_id', sa.String(length=32),
                                          nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('creator_user_id')
