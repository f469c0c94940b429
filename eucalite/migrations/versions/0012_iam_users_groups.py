"""Issue 16's IAM API, first batch: groups and their members, user tags, the login
profile's fields, access keys' last use and the account alias.

Revision ID: 0012_iam_users_groups
Revises: 0011_bytewise_listing_index
Create Date: 2026-12-05
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_iam_users_groups'
down_revision = '0011_bytewise_listing_index'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'iam_groups',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('path', sa.String(length=512), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_table(
        'iam_group_members',
        sa.Column('group_id', sa.String(length=32), nullable=False),
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(['group_id'], ['iam_groups.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('group_id', 'user_id'),
    )
    op.create_index('ix_iam_group_members_user_id', 'iam_group_members', ['user_id'])
    op.create_table(
        'iam_user_tags',
        sa.Column('user_id', sa.String(length=32), nullable=False),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('value', sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', 'key'),
    )
    op.add_column('accounts', sa.Column('alias', sa.String(length=63), nullable=True))
    op.create_index('ix_accounts_alias', 'accounts', ['alias'], unique=True)
    op.add_column('users', sa.Column('password_created', sa.DateTime(), nullable=True))
    op.add_column('users', sa.Column('password_reset_required', sa.Boolean(),
                                     nullable=False, server_default=sa.false()))
    op.add_column('access_keys', sa.Column('last_used', sa.DateTime(), nullable=True))
    op.add_column('access_keys', sa.Column('last_used_service', sa.String(length=32),
                                           nullable=True))
    op.add_column('access_keys', sa.Column('last_used_region', sa.String(length=64),
                                           nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('access_keys') as batch:
        batch.drop_column('last_used_region')
        batch.drop_column('last_used_service')
        batch.drop_column('last_used')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('password_reset_required')
        batch.drop_column('password_created')
    op.drop_index('ix_accounts_alias', table_name='accounts')
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('alias')
    op.drop_table('iam_user_tags')
    op.drop_index('ix_iam_group_members_user_id', table_name='iam_group_members')
    op.drop_table('iam_group_members')
    op.drop_table('iam_groups')
