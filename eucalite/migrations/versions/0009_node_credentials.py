"""Issue 15's joining: node credentials for the internal API (SigV4 keys issued to a node
at join, revocable) and one-time join tokens (kept as their SHA-256 only).

Revision ID: 0009_node_credentials
Revises: 0008_images_nodes_status
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_node_credentials'
down_revision = '0008_images_nodes_status'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'node_credentials',
        sa.Column('access_key_id', sa.String(length=32), nullable=False),
        sa.Column('node_id', sa.String(length=64), nullable=False),
        sa.Column('secret', sa.String(length=64), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('access_key_id'),
    )
    op.create_index('ix_node_credentials_node_id', 'node_credentials', ['node_id'])
    op.create_table(
        'join_tokens',
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('zone', sa.String(length=64), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('expires', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=255), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('node_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('token_sha256'),
    )


def downgrade() -> None:
    op.drop_table('join_tokens')
    op.drop_index('ix_node_credentials_node_id', table_name='node_credentials')
    op.drop_table('node_credentials')
