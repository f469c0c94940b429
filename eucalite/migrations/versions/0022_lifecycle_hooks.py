"""Auto Scaling lifecycle hooks: a group's hooks, and on each member the hook it waits on
(its token, deadline) while in Pending:Wait or Terminating:Wait.

Revision ID: 0022_lifecycle_hooks
Revises: 0021_burst
Create Date: 2026-12-06 07:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0022_lifecycle_hooks'
down_revision = '0021_burst'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'as_lifecycle_hooks',
        sa.Column('group_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('transition', sa.String(length=64), nullable=False),
        sa.Column('heartbeat_timeout', sa.Integer(), nullable=False),
        sa.Column('default_result', sa.String(length=16), nullable=False),
        sa.Column('metadata_text', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['group_id'], ['as_groups.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group_id', 'name'),
    )
    with op.batch_alter_table('as_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hook_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('hook_token', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('hook_deadline', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('as_instances', schema=None) as batch_op:
        batch_op.drop_column('hook_deadline')
        batch_op.drop_column('hook_token')
        batch_op.drop_column('hook_name')
    op.drop_table('as_lifecycle_hooks')
