"""Byte counts that pass 2 GiB: an image's size and a snapshot's stored bytes become 64-bit
(PostgreSQL's INTEGER is 32-bit, so a CreateImage of a 2 GiB root failed there; SQLite's
INTEGER was always 64-bit, so nothing changes on it but the declared type).

Revision ID: 0010_big_byte_counts
Revises: 0009_node_credentials
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_big_byte_counts'
down_revision = '0009_node_credentials'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.alter_column('size_bytes', existing_type=sa.Integer(),
                              type_=sa.BigInteger(), existing_nullable=True)
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.alter_column('stored_bytes', existing_type=sa.Integer(),
                              type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.alter_column('stored_bytes', existing_type=sa.BigInteger(),
                              type_=sa.Integer(), existing_nullable=False)
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.alter_column('size_bytes', existing_type=sa.BigInteger(),
                              type_=sa.Integer(), existing_nullable=True)
