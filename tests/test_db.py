"""Schema migrations: they match the models, apply at start and keep data across upgrades."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from eucalite import accounts, create_app, db as db_module
from eucalite import models  # noqa: F401


def test_migrations_build_exactly_the_models_schema(tmp_path):
    url = f"sqlite:///{tmp_path}/schema.db"
    db_module.upgrade(url)
    engine = create_engine(url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection),
                                       db_module.db.metadata)
    engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)


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
