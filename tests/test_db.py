"""Schema migrations: they match the models, apply at start and keep data across upgrades."""
from __future__ import annotations

import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from eucalite import accounts, create_app, db as db_module
from eucalite import models  # noqa: F401


def test_migrations_build_exactly_the_models_schema(empty_database_url):
    url = db_module.engine_url(empty_database_url)
    db_module.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(
            connection, opts={"include_object": db_module.compared}), db_module.db.metadata)
    engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)


def test_postgresql_urls_use_psycopg_and_say_when_it_is_missing(monkeypatch):
    for url in ("postgresql://u:p@db/euca", "postgres://u:p@db/euca",
                "postgresql+psycopg://u:p@db/euca"):
        assert db_module.engine_url(url) == "postgresql+psycopg://u:p@db/euca"
    assert db_module.engine_url("sqlite:////x/y.db") == "sqlite:////x/y.db"
    monkeypatch.setitem(sys.modules, "psycopg", None)      # not installed
    with pytest.raises(ValueError, match=r"eucalite\[postgresql\]"):
        db_module.upgrade("postgresql://u:p@db/euca")


def test_database_is_at_head_after_start(app):
    head = ScriptDirectory.from_config(db_module.alembic_config("sqlite://")).get_current_head()
    assert db_module.current_revision(app.config["SQLALCHEMY_DATABASE_URI"]) == head


def test_restart_keeps_accounts_and_keys(tmp_path):
    overrides = {"data_dir": str(tmp_path / "data"), "node": False}
    first = create_app(overrides)
    with first.app_context():
        accounts.create_account("keepme")
        key = accounts.create_access_key("keepme", "admin")
        key_id, secret = key.id, key.secret
        admin_key = accounts.first_active_key("eucalyptus", "admin").id
    second = create_app(overrides)           # migrations and bootstrap run again
    with second.app_context():
        principal, found_secret = accounts.principal_for_key(key_id)
        assert principal.account_name == "keepme" and found_secret == secret
        assert accounts.first_active_key("eucalyptus", "admin").id == admin_key
        assert [a.name for a in accounts.list_accounts()] == ["eucalyptus", "keepme"]


def test_upgrading_to_edge_puts_existing_instances_in_the_groups_they_named(
        empty_database_url):
    """Instances recorded before security groups existed named their groups as free text
    (an id passed as SecurityGroupId was stored as a name): after the upgrade each is a
    member of real groups of its account, and ``default`` has AWS's default rules."""
    from sqlalchemy import text
    url = db_module.engine_url(empty_database_url)
    db_module.upgrade(url, "0005_console_sessions")
    engine = create_engine(url)
    instance = ("INSERT INTO instances (id, reservation_id, owner_id, requester_arn, image_id,"
                " instance_type, state, zone, launch_index, launch_time, root_device_type,"
                " root_device_name, cpu, memory_mb, disk_gb, security_groups_json) VALUES"
                " (:id, 'r-1', '111122223333', '', 'emi-1', 't1.micro', 'running', 'z', 0,"
                " '2026-01-01', 'instance-store', '/dev/sda1', 1, 256, 1, :groups)")
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO accounts (id, name, created) VALUES "
                                "('111122223333', 'lab', '2026-01-01')"))
        for instance_id, groups in (("i-1", '["web", "default"]'), ("i-2", '["sg-0abc"]'),
                                    ("i-3", None)):
            connection.execute(text(instance), {"id": instance_id, "groups": groups})
    db_module.upgrade(url)
    with engine.connect() as connection:
        groups = dict(connection.execute(text("SELECT name, id FROM security_groups")).all())
        members = connection.execute(text(
            "SELECT instance_id, group_id FROM instance_security_groups "
            "ORDER BY instance_id, position")).all()
        rules = connection.execute(text(
            "SELECT group_id, egress, protocol, cidr, peer_group_id FROM security_group_rules"
        )).all()
    engine.dispose()
    assert sorted(groups) == ["default", "web"]
    assert [tuple(row) for row in members] == [
        ("i-1", groups["web"]), ("i-1", groups["default"]), ("i-2", groups["default"]),
        ("i-3", groups["default"])]
    assert sorted(tuple(row) for row in rules) == sorted([
        (groups["default"], False, "-1", None, groups["default"]),
        (groups["default"], True, "-1", "0.0.0.0/0", None),
        (groups["web"], True, "-1", "0.0.0.0/0", None)])
