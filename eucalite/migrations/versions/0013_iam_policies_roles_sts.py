"""Issue 16's IAM records beyond users: managed policies with versions and attachments,
inline policies of users, groups and roles, roles with tags, instance profiles, STS
sessions, and the instance profile an instance was launched with (eucalite/identity.py).

Revision ID: 0013_iam_policies_roles_sts
Revises: 0012_iam_users_groups
Create Date: 2026-12-05 16:00:15.616091
"""
from alembic import op
import sqlalchemy as sa


revision = '0013_iam_policies_roles_sts'
down_revision = '0012_iam_users_groups'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('iam_instance_profiles',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'name')
    )
    op.create_table('iam_policies',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('default_version', sa.String(length=16), nullable=False),
    sa.Column('next_version', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('updated', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'name')
    )
    with op.batch_alter_table('iam_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iam_policies_account_id'), ['account_id'], unique=False)

    op.create_table('iam_roles',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=512), nullable=False),
    sa.Column('trust_policy', sa.Text(), nullable=False),
    sa.Column('description', sa.String(length=1000), nullable=True),
    sa.Column('max_session_duration', sa.Integer(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('last_used', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('account_id', 'name')
    )
    op.create_table('iam_inline_policies',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('group_id', sa.String(length=32), nullable=True),
    sa.Column('role_id', sa.String(length=32), nullable=True),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['iam_groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['iam_roles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('group_id', 'name'),
    sa.UniqueConstraint('role_id', 'name'),
    sa.UniqueConstraint('user_id', 'name')
    )
    with op.batch_alter_table('iam_inline_policies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iam_inline_policies_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iam_inline_policies_role_id'), ['role_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iam_inline_policies_user_id'), ['user_id'], unique=False)

    op.create_table('iam_instance_profile_roles',
    sa.Column('profile_id', sa.String(length=32), nullable=False),
    sa.Column('role_id', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['profile_id'], ['iam_instance_profiles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['iam_roles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('profile_id', 'role_id')
    )
    with op.batch_alter_table('iam_instance_profile_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iam_instance_profile_roles_role_id'), ['role_id'], unique=False)

    op.create_table('iam_policy_attachments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('policy_id', sa.String(length=32), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('group_id', sa.String(length=32), nullable=True),
    sa.Column('role_id', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['group_id'], ['iam_groups.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['policy_id'], ['iam_policies.id'], ),
    sa.ForeignKeyConstraint(['role_id'], ['iam_roles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('policy_id', 'group_id'),
    sa.UniqueConstraint('policy_id', 'role_id'),
    sa.UniqueConstraint('policy_id', 'user_id')
    )
    with op.batch_alter_table('iam_policy_attachments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_iam_policy_attachments_group_id'), ['group_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iam_policy_attachments_policy_id'), ['policy_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iam_policy_attachments_role_id'), ['role_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_iam_policy_attachments_user_id'), ['user_id'], unique=False)

    op.create_table('iam_policy_versions',
    sa.Column('policy_id', sa.String(length=32), nullable=False),
    sa.Column('version_id', sa.String(length=16), nullable=False),
    sa.Column('document', sa.Text(), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['iam_policies.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('policy_id', 'version_id')
    )
    op.create_table('iam_role_tags',
    sa.Column('role_id', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=128), nullable=False),
    sa.Column('value', sa.String(length=256), nullable=False),
    sa.ForeignKeyConstraint(['role_id'], ['iam_roles.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('role_id', 'key')
    )
    op.create_table('sts_sessions',
    sa.Column('access_key_id', sa.String(length=32), nullable=False),
    sa.Column('secret', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=1024), nullable=False),
    sa.Column('account_id', sa.String(length=12), nullable=False),
    sa.Column('user_id', sa.String(length=32), nullable=True),
    sa.Column('role_id', sa.String(length=32), nullable=True),
    sa.Column('session_name', sa.String(length=64), nullable=True),
    sa.Column('instance_id', sa.String(length=32), nullable=True),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('expires', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['role_id'], ['iam_roles.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('access_key_id')
    )
    with op.batch_alter_table('sts_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sts_sessions_expires'), ['expires'], unique=False)
        batch_op.create_index(batch_op.f('ix_sts_sessions_instance_id'), ['instance_id'], unique=False)

    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('iam_instance_profile_arn', sa.String(length=2048), nullable=True))
        batch_op.add_column(sa.Column('iam_instance_profile_id', sa.String(length=32), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('iam_instance_profile_id')
        batch_op.drop_column('iam_instance_profile_arn')

    with op.batch_alter_table('sts_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sts_sessions_instance_id'))
        batch_op.drop_index(batch_op.f('ix_sts_sessions_expires'))

    op.drop_table('sts_sessions')
    op.drop_table('iam_role_tags')
    op.drop_table('iam_policy_versions')
    with op.batch_alter_table('iam_policy_attachments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iam_policy_attachments_user_id'))
        batch_op.drop_index(batch_op.f('ix_iam_policy_attachments_role_id'))
        batch_op.drop_index(batch_op.f('ix_iam_policy_attachments_policy_id'))
        batch_op.drop_index(batch_op.f('ix_iam_policy_attachments_group_id'))

    op.drop_table('iam_policy_attachments')
    with op.batch_alter_table('iam_instance_profile_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iam_instance_profile_roles_role_id'))

    op.drop_table('iam_instance_profile_roles')
    with op.batch_alter_table('iam_inline_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iam_inline_policies_user_id'))
        batch_op.drop_index(batch_op.f('ix_iam_inline_policies_role_id'))
        batch_op.drop_index(batch_op.f('ix_iam_inline_policies_group_id'))

    op.drop_table('iam_inline_policies')
    op.drop_table('iam_roles')
    with op.batch_alter_table('iam_policies', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_iam_policies_account_id'))

    op.drop_table('iam_policies')
    op.drop_table('iam_instance_profiles')
