"""EC2 launch templates (issue 19): templates (lt-) and their numbered versions, each
version's LaunchTemplateData kept as JSON.

Revision ID: 0019_launch_templates
Revises: 0018_instance_monitoring
Create Date: 2026-12-06 06:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0019_launch_templates'
down_revision = '0018_instance_monitoring'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'launch_templates',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('owner_id', sa.String(length=12), nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=2048), nullable=False),
        sa.Column('default_version', sa.Integer(), nullable=False),
        sa.Column('latest_version', sa.Integer(), nullable=False),
        sa.Column('client_token', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('owner_id', 'name'),
    )
    op.create_index('ix_launch_templates_owner_created', 'launch_templates',
                    ['owner_id', 'created', 'id'])
    op.create_table(
        'launch_template_versions',
        sa.Column('template_id', sa.String(length=32), nullable=False),
        sa.Column('version_number', sa.Integer(), nullable=False),
        sa.Column('description', sa.String(length=255), nullable=True),
        sa.Column('data_json', sa.Text(), nullable=False),
        sa.Column('created', sa.DateTime(), nullable=False),
        sa.Column('created_by', sa.String(length=2048), nullable=False),
        sa.Column('client_token', sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(['template_id'], ['launch_templates.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('template_id', 'version_number'),
    )


def downgrade() -> None:
    op.drop_table('launch_template_versions')
    op.drop_index('ix_launch_templates_owner_created', table_name='launch_templates')
    op.drop_table('launch_templates')
