"""Issue 18's CloudWatch: metrics, their data as roll-up cells (one row per metric, storage
level, interval and unit), metric alarms and their history.

Revision ID: 0017_cloudwatch
Revises: 0016_legal_hold_unset
Create Date: 2026-12-06 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_cloudwatch'
down_revision = '0016_legal_hold_unset'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'cw_metrics',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('dimensions_json', sa.Text(), nullable=False),
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('high_resolution', sa.Boolean(), nullable=False),
        sa.Column('last_put', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'key'),
    )
    op.create_index('ix_cw_metrics_listing', 'cw_metrics', ['account_id', 'namespace', 'name'])
    op.create_table(
        'cw_cells',
        sa.Column('metric_id', sa.Integer(), nullable=False),
        sa.Column('level', sa.Integer(), nullable=False),
        sa.Column('start', sa.BigInteger(), nullable=False),
        sa.Column('unit', sa.String(length=32), nullable=False),
        sa.Column('count', sa.Float(), nullable=False),
        sa.Column('total', sa.Float(), nullable=False),
        sa.Column('minimum', sa.Float(), nullable=False),
        sa.Column('maximum', sa.Float(), nullable=False),
        sa.Column('values_json', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['metric_id'], ['cw_metrics.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('metric_id', 'level', 'start', 'unit'),
    )
    op.create_index('ix_cw_cells_level_start', 'cw_cells', ['level', 'start'])
    op.create_table(
        'cw_alarms',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('namespace', sa.String(length=255), nullable=True),
        sa.Column('metric_name', sa.String(length=255), nullable=True),
        sa.Column('definition_json', sa.Text(), nullable=False),
        sa.Column('tags_json', sa.Text(), nullable=True),
        sa.Column('actions_enabled', sa.Boolean(), nullable=False),
        sa.Column('state', sa.String(length=20), nullable=False),
        sa.Column('state_reason', sa.Text(), nullable=False),
        sa.Column('state_reason_data', sa.Text(), nullable=True),
        sa.Column('state_updated', sa.DateTime(), nullable=False),
        sa.Column('state_transitioned', sa.DateTime(), nullable=False),
        sa.Column('configuration_updated', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('account_id', 'name'),
    )
    op.create_table(
        'cw_alarm_history',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('account_id', sa.String(length=12), nullable=False),
        sa.Column('alarm_name', sa.String(length=255), nullable=False),
        sa.Column('alarm_type', sa.String(length=20), nullable=False),
        sa.Column('timestamp', sa.DateTime(), nullable=False),
        sa.Column('item_type', sa.String(length=32), nullable=False),
        sa.Column('summary', sa.Text(), nullable=False),
        sa.Column('data_json', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_cw_alarm_history_alarm', 'cw_alarm_history',
                    ['account_id', 'alarm_name', 'timestamp'])


def downgrade() -> None:
    op.drop_index('ix_cw_alarm_history_alarm', table_name='cw_alarm_history')
    op.drop_table('cw_alarm_history')
    op.drop_table('cw_alarms')
    op.drop_index('ix_cw_cells_level_start', table_name='cw_cells')
    op.drop_table('cw_cells')
    op.drop_index('ix_cw_metrics_listing', table_name='cw_metrics')
    op.drop_table('cw_metrics')
