"""Walrus: buckets, object versions, multipart uploads and parts.

Revision ID: 0002_walrus
Revises: 0001_accounts
Create Date: 2026-11-25 13:07:59.766782
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_walrus'
down_revision = '0001_accounts'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('s3_buckets',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('created', sa.DateTime(), nullable=False),
    sa.Column('location', sa.String(length=64), nullable=False),
    sa.Column('versioning', sa.String(length=16), nullable=True),
    sa.Column('acl_json', sa.Text(), nullable=True),
    sa.Column('policy_json', sa.Text(), nullable=True),
    sa.Column('cors_json', sa.Text(), nullable=True),
    sa.Column('lifecycle_json', sa.Text(), nullable=True),
    sa.Column('tags_json', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['owner_id'], ['accounts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('s3_objects',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('bucket_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('version_id', sa.String(length=64), nullable=False),
    sa.Column('is_latest', sa.Boolean(), nullable=False),
    sa.Column('delete_marker', sa.Boolean(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('headers_json', sa.Text(), nullable=True),
    sa.Column('meta_json', sa.Text(), nullable=True),
    sa.Column('acl_json', sa.Text(), nullable=True),
    sa.Column('tags_json', sa.Text(), nullable=True),
    sa.Column('checksum_algorithm', sa.String(length=16), nullable=True),
    sa.Column('checksum_value', sa.String(length=128), nullable=True),
    sa.Column('checksum_type', sa.String(length=16), nullable=True),
    sa.Column('segments_json', sa.Text(), nullable=False),
    sa.Column('parts_count', sa.Integer(), nullable=True),
    sa.Column('storage_class', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['bucket_id'], ['s3_buckets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('bucket_id', 'key', 'version_id')
    )
    with op.batch_alter_table('s3_objects', schema=None) as batch_op:
        batch_op.create_index('ix_s3_objects_listing', ['bucket_id', 'is_latest', 'key'], unique=False)

    op.create_table('s3_uploads',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('bucket_id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=1024), nullable=False),
    sa.Column('initiated', sa.DateTime(), nullable=False),
    sa.Column('owner_id', sa.String(length=12), nullable=False),
    sa.Column('initiator_arn', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('headers_json', sa.Text(), nullable=True),
    sa.Column('meta_json', sa.Text(), nullable=True),
    sa.Column('acl_json', sa.Text(), nullable=True),
    sa.Column('tags_json', sa.Text(), nullable=True),
    sa.Column('checksum_algorithm', sa.String(length=16), nullable=True),
    sa.Column('storage_class', sa.String(length=32), nullable=False),
    sa.ForeignKeyConstraint(['bucket_id'], ['s3_buckets.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('s3_parts',
    sa.Column('upload_id', sa.String(length=64), nullable=False),
    sa.Column('part_number', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('etag', sa.String(length=64), nullable=False),
    sa.Column('last_modified', sa.DateTime(), nullable=False),
    sa.Column('path', sa.String(length=255), nullable=False),
    sa.Column('checksum_value', sa.String(length=128), nullable=True),
    sa.ForeignKeyConstraint(['upload_id'], ['s3_uploads.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('upload_id', 'part_number')
    )


def downgrade() -> None:
    op.drop_table('s3_parts')
    op.drop_table('s3_uploads')
    with op.batch_alter_table('s3_objects', schema=None) as batch_op:
        batch_op.drop_index('ix_s3_objects_listing')

    op.drop_table('s3_objects')
    op.drop_table('s3_buckets')
