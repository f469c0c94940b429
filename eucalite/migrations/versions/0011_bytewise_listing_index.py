"""On PostgreSQL, an index in S3's byte order for bucket listings.

Listings order keys bytewise (``db.bytewise``: ``key COLLATE "C"``). PostgreSQL's plain index
on ``s3_objects (bucket_id, is_latest, key)`` follows the database's collation, so it cannot
serve that order: every page of a listing sorted all of the bucket's keys. This index can
(a page reads only its own rows). SQLite's keys already compare bytewise, so its existing
index serves listings and nothing changes there. The models do not declare this index:
Alembic's comparison skips expression indexes (so tests/test_db.py stays exact) and SQLite
has no collation named "C".

Revision ID: 0011_bytewise_listing_index
Revises: 0010_big_byte_counts
Create Date: 2026-12-05
"""
from alembic import op


revision = '0011_bytewise_listing_index'
down_revision = '0010_big_byte_counts'
branch_labels = None
depends_on = None

INDEX = "ix_s3_objects_listing_bytewise"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'CREATE INDEX {INDEX} ON s3_objects '
                   f'(bucket_id, is_latest, (key COLLATE "C"))')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX {INDEX}")
