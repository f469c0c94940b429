"""CloudWatch detailed monitoring per instance (RunInstances' Monitoring.Enabled,
MonitorInstances / UnmonitorInstances): ``instances.monitoring`` is ``disabled`` (basic
monitoring: metrics every ``metrics_interval``) or ``enabled`` (every
``detailed_metrics_interval``, at 1-second resolution). Existing instances are basic.

Revision ID: 0018_instance_monitoring
Revises: 0017_cloudwatch
Create Date: 2026-12-06 03:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0018_instance_monitoring'
down_revision = '0017_cloudwatch'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('monitoring', sa.String(length=16), nullable=False,
                                      server_default='disabled'))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('monitoring')
