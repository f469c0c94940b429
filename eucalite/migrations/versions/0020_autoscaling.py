"""Issue 19's Auto Scaling: launch configurations, groups with their tags and instances,
scaling policies, scheduled actions and scaling activities.

Revision ID: 0020_autoscaling
Revises: 0019_launch_templates
Create Date: 2026-12-06 06:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_autoscaling'
down_revision = '0019_launch_templates'
branch_labels = None
depends_on = None


def _account():
    return [sa.Column('account_id', sa.String(length=12), nullable=False),
            sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE')]


def _of_group():
    return [sa.Column('group_id', sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(['group_id'], ['as_groups.id'], ondelete='CASCADE')]


def upgrade() -> None:
    op.create_table(
        'as_launch_configs',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        *_account(),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('arn', sa.String(length=1600), nullable=False),
        sa.Column('definition_json', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_table(
        'as_groups',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        *_account(),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('arn', sa.String(length=1600), nullable=False),
        sa.Column('launch_config', sa.String(length=255), nullable=True),
        sa.Column('launch_template_json', sa.Text(), nullable=True),
        sa.Column('min_size', sa.Integer(), nullable=False),
        sa.Column('max_size', sa.Integer(), nullable=False),
        sa.Column('desired', sa.Integer(), nullable=False),
        sa.Column('default_cooldown', sa.Integer(), nullable=False),
        sa.Column('zones_json', sa.Text(), nullable=False),
        sa.Column('health_check_type', sa.String(length=32), nullable=False),
        sa.Column('grace_period', sa.Integer(), nullable=False),
        sa.Column('termination_policies_json', sa.Text(), nullable=False),
        sa.Column('protect_new', sa.Boolean(), nullable=False),
        sa.Column('suspended_json', sa.Text(), nullable=False),
        sa.Column('settings_json', sa.Text(), nullable=False),
        sa.Column('metrics_json', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('scaled_at', sa.DateTime(), nullable=True),
        sa.Column('capacity_cause', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_table(
        'as_group_tags',
        *_of_group(),
        sa.Column('key', sa.String(length=128), nullable=False),
        sa.Column('value', sa.String(length=256), nullable=False),
        sa.Column('propagate', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('group_id', 'key'),
    )
    op.create_table(
        'as_instances',
        sa.Column('instance_id', sa.String(length=32), nullable=False),
        *_of_group(),
        *_account(),
        sa.Column('zone', sa.String(length=255), nullable=False),
        sa.Column('lifecycle_state', sa.String(length=32), nullable=False),
        sa.Column('health', sa.String(length=16), nullable=False),
        sa.Column('health_reason', sa.Text(), nullable=True),
        sa.Column('launch_config', sa.String(length=255), nullable=True),
        sa.Column('launch_template_json', sa.Text(), nullable=True),
        sa.Column('protected', sa.Boolean(), nullable=False),
        sa.Column('joined_at', sa.DateTime(), nullable=False),
        sa.Column('activity_id', sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint('instance_id'),
    )
    op.create_index('ix_as_instances_group', 'as_instances', ['group_id'])
    op.create_table(
        'as_policies',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        *_account(),
        *_of_group(),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('arn', sa.String(length=1600), nullable=False),
        sa.Column('definition_json', sa.Text(), nullable=False),
        sa.Column('alarms_json', sa.Text(), nullable=False),
        sa.Column('acted_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'name'),
        sa.UniqueConstraint('arn'),
    )
    op.create_table(
        'as_scheduled',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        *_account(),
        *_of_group(),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('arn', sa.String(length=1600), nullable=False),
        sa.Column('start_time', sa.DateTime(), nullable=True),
        sa.Column('end_time', sa.DateTime(), nullable=True),
        sa.Column('recurrence', sa.String(length=255), nullable=True),
        sa.Column('time_zone', sa.String(length=255), nullable=True),
        sa.Column('min_size', sa.Integer(), nullable=True),
        sa.Column('max_size', sa.Integer(), nullable=True),
        sa.Column('desired', sa.Integer(), nullable=True),
        sa.Column('next_run', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('group_id', 'name'),
    )
    op.create_table(
        'as_activities',
        sa.Column('id', sa.String(length=64), nullable=False),
        *_account(),
        *_of_group(),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('cause', sa.Text(), nullable=False),
        sa.Column('start_time', sa.DateTime(), nullable=False),
        sa.Column('end_time', sa.DateTime(), nullable=True),
        sa.Column('status_code', sa.String(length=32), nullable=False),
        sa.Column('status_message', sa.Text(), nullable=True),
        sa.Column('progress', sa.Integer(), nullable=False),
        sa.Column('details_json', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_as_activities_group', 'as_activities', ['group_id', 'start_time'])


def downgrade() -> None:
    for table in ('as_activities', 'as_scheduled', 'as_policies', 'as_instances',
                  'as_group_tags', 'as_groups', 'as_launch_configs'):
        op.drop_table(table)
