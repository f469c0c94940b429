"""PostgreSQL as the cloud's database: what only PostgreSQL could get wrong.

Every other test file also runs on PostgreSQL in ``./setup.sh test``'s second pass; these
exist for that database alone and skip without EUCALITE_TEST_DATABASE_URL. The listing
tests run on a database with a locale collation (ICU en-US) in which "a" sorts before "B",
so S3's byte order is really tested."""
from __future__ import annotations

import threading
import uuid

import pgutil
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from botocore.exceptions import ClientError
from ec2util import make_image, small_capacity
from liveutil import start_live
from serverutil import cli_env, run
from sqlalchemy import create_engine, text

from eucalite import db as db_module
from eucalite import models  # noqa: F401
from eucalite.cluster.models import Node
from eucalite.compute import instance_types
from eucalite.db import db

pytestmark = pytest.mark.skipif(not pgutil.URL, reason=pgutil.SKIP_REASON)

KEYS = ["a", "B", "a/b", "é", "Z", "a-c", "ab", "A"]
BYTE_ORDER = sorted(KEYS, key=lambda key: key.encode())    # A B Z a a-c a/b ab é


@pytest.fixture
def icu_live(tmp_path, monkeypatch):
    """A live cloud on a database collating as ICU en-US (not byte order)."""
    name = "eucalite_icu_" + uuid.uuid4().hex[:12]
    pgutil.create_database(name, icu=True)
    monkeypatch.setenv("EUCALITE_DATABASE_URL", pgutil.url_for(name))
    live, server = start_live(tmp_path / "data")
    yield live
    server.shutdown()
    pgutil.drop_database(name)


def _collation_is_not_byte_order(live) -> None:
    """The precondition that makes the listing tests mean something."""
    with live.app.app_context():
        assert db.engine.dialect.name == "postgresql"
        assert db.session.execute(text("SELECT 'a' < 'B'")).scalar() is True


def test_s3_lists_keys_in_byte_order_whatever_the_collation(icu_live):
    live = icu_live
    _collation_is_not_byte_order(live)
    s3 = live.client("s3")
    s3.create_bucket(Bucket="order")
    for key in KEYS:
        s3.put_object(Bucket="order", Key=key, Body=b"x")
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket="order")["Contents"]]
    assert listed == BYTE_ORDER
    # paged two at a time: every page resumes after the last key in byte order
    paged = [item["Key"]
             for page in s3.get_paginator("list_objects_v2").paginate(
                 Bucket="order", PaginationConfig={"PageSize": 2})
             for item in page.get("Contents", [])]
    assert paged == BYTE_ORDER
    after = s3.list_objects_v2(Bucket="order", StartAfter="Z")
    assert [item["Key"] for item in after["Contents"]] == ["a", "a-c", "a/b", "ab", "é"]
    rolled = s3.list_objects_v2(Bucket="order", Delimiter="/")
    assert [item["Key"] for item in rolled["Contents"]] == ["A", "B", "Z", "a", "a-c", "ab",
                                                            "é"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["a/"]
    versions = s3.list_object_versions(Bucket="order")["Versions"]
    assert [item["Key"] for item in versions] == BYTE_ORDER


def test_a_listing_page_reads_an_index_in_byte_order_not_a_sort_of_the_bucket(icu_live):
    """With sorting discouraged, the planner still needs no Sort for a listing page: an
    index serves S3's byte order (else every page sorted the whole bucket)."""
    live = icu_live
    s3 = live.client("s3")
    s3.create_bucket(Bucket="indexed")
    s3.put_object(Bucket="indexed", Key="k", Body=b"x")
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM s3_objects" in statement and "ORDER BY" in statement:
            statements.append((statement, parameters))

    with live.app.app_context():
        from sqlalchemy import event
        from eucalite.s3 import listing
        from eucalite.s3.models import Bucket
        bucket = db.session.execute(db.select(Bucket).where(Bucket.name == "indexed")).scalar_one()
        event.listen(db.engine, "before_cursor_execute", capture)
        try:
            listing.list_page(bucket, prefix="k", start_after="a", max_keys=10)
            listing.list_page(bucket, max_keys=10, versions=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", capture)
        assert len(statements) == 2
        connection = db.session.connection().connection.driver_connection
        with connection.cursor() as cursor:
            cursor.execute("SET enable_sort = off")
            plans = []
            for statement, parameters in statements:
                cursor.execute("EXPLAIN " + statement, parameters)
                plans.append("\n".join(row[0] for row in cursor.fetchall()))
            cursor.execute("RESET enable_sort")
    assert "ix_s3_objects_listing_bytewise" in plans[0] and "Sort" not in plans[0], plans[0]
    # versions order by (key, id desc): the index gives the key order, a sort within a key
    assert "ix_s3_objects_listing_bytewise" in plans[1], plans[1]


def test_multipart_uploads_list_in_byte_order(icu_live):
    live = icu_live
    _collation_is_not_byte_order(live)
    s3 = live.client("s3")
    s3.create_bucket(Bucket="uploads")
    for key in KEYS:
        s3.create_multipart_upload(Bucket="uploads", Key=key)
    listed = s3.list_multipart_uploads(Bucket="uploads")["Uploads"]
    assert [upload["Key"] for upload in listed] == BYTE_ORDER
    under = s3.list_multipart_uploads(Bucket="uploads", Prefix="a")["Uploads"]
    assert [upload["Key"] for upload in under] == ["a", "a-c", "a/b", "ab"]


def test_concurrent_launches_never_oversubscribe_the_node(cloud):
    """40 RunInstances of 1 to 3 instances each (80 in all) race for a node with room for
    far fewer m1.small: exactly that many run, the node's bookkeeping agrees, and the
    losers get AWS's InsufficientInstanceCapacity, never a database error."""
    image = make_image(cloud)
    with cloud.app.app_context():
        small = instance_types.get("m1.small")
        small_cpu, small_memory_mb = small.cpu, small.memory_mb
        [node] = db.session.execute(db.select(Node)).scalars()
        # cores are the limit (times the overcommit ratio); memory and disk are not
        node.cores, node.memory_mb, node.disk_gb = 6, 1_000_000, 1_000_000
        node.used_cores = node.used_memory_mb = node.used_disk_gb = 0
        db.session.commit()
    room = small_capacity(cloud)
    assert 10 <= room < 60
    launched: list[int] = []
    codes: list[str] = []
    start = threading.Barrier(40)

    def launch(count):
        ec2 = cloud.client("ec2")
        start.wait()
        try:
            reply = ec2.run_instances(ImageId=image, InstanceType="m1.small", MinCount=1,
                                      MaxCount=count)
            launched.append(len(reply["Instances"]))
        except ClientError as caught:
            codes.append(caught.response["Error"]["Code"])

    threads = [threading.Thread(target=launch, args=(1 + i % 3,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert sum(launched) == room
    assert set(codes) == {"InsufficientInstanceCapacity"}
    assert len(launched) + len(codes) == 40
    described = [item for reservation in cloud.client("ec2").describe_instances()["Reservations"]
                 for item in reservation["Instances"]]
    assert len(described) == room
    with cloud.app.app_context():
        [node] = db.session.execute(db.select(Node)).scalars()
        assert node.used_cores == room * small_cpu
        assert node.used_memory_mb == room * small_memory_mb


def test_db_upgrade_on_an_empty_database_reaches_head_with_the_models_schema(
        empty_database_url, tmp_path):
    """`eucalite db upgrade` given a plain postgresql:// URL (psycopg is implied) builds
    exactly the models' schema."""
    plain = "postgresql://" + empty_database_url.split("://", 1)[1]
    head = ScriptDirectory.from_config(db_module.alembic_config(plain)).get_current_head()
    result = run("eucalite", "db", "upgrade", "--data-dir", str(tmp_path / "data"),
                 env=cli_env(EUCALITE_DATABASE_URL=plain))
    assert result.stdout.strip() == f"database at revision {head}"
    engine = create_engine(db_module.engine_url(plain))
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(
                connection, opts={"include_object": db_module.compared}),
                db_module.db.metadata)
    finally:
        engine.dispose()
    assert differences == [], "PostgreSQL schema differs from the models: " + repr(differences)


def test_a_database_collating_by_locale_is_warned_about(caplog):
    """The cloud still starts on it, saying that sorted answers other than S3's follow
    the locale; a byte-order database gets no such warning."""
    name = "eucalite_icu_" + uuid.uuid4().hex[:12]
    pgutil.create_database(name, icu=True)
    try:
        with caplog.at_level("WARNING", logger="eucalite.db"):
            db_module.upgrade(pgutil.url_for(name))
        assert "collates by a locale (ICU)" in caplog.text
    finally:
        pgutil.drop_database(name)
    caplog.clear()
    plain = "eucalite_c_" + uuid.uuid4().hex[:12]
    pgutil.create_database(plain)
    try:
        with caplog.at_level("WARNING", logger="eucalite.db"):
            db_module.upgrade(pgutil.url_for(plain))
        assert "collates by a locale" not in caplog.text
    finally:
        pgutil.drop_database(plain)
