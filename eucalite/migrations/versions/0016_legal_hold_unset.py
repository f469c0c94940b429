"""A version's (and a multipart upload's) legal hold may be unset: GetObjectLegalHold answers
NoSuchObjectLockConfiguration for a version whose legal hold was never set and OFF only for
one set OFF, as S3 does, so NULL (never set) must be told apart from false (OFF).

Rows written before this revision cannot say which they were; their false becomes NULL,
since a hold set OFF explicitly is by far the rarer case.

Revision ID: 0016_legal_hold_unset
Revises: 0015_s3_modern
Create Date: 2026-12-06 02:40:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0016_legal_hold_unset'
down_revision = '0015_s3_modern'
branch_labels = None
depends_on = None

_TABLES = ('s3_objects', 's3_uploads')


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('legal_hold', existing_type=sa.Boolean(), nullable=True,
                                  server_default=None)
        op.execute(sa.text(f"UPDATE {table} SET legal_hold = NULL WHERE legal_hold = :off")
                   .bindparams(off=False))


def downgrade() -> None:
    for table in _TABLES:
        op.execute(sa.text(f"UPDATE {table} SET legal_hold = :off WHERE legal_hold IS NULL")
                   .bindparams(off=False))
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column('legal_hold', existing_type=sa.Boolean(), nullable=False,
                                  server_default=sa.false())
