"""The SQLAlchemy instance, SQLite tuning and schema migrations.

State changes go through :mod:`eucalite.statemachine`'s one compare-and-swap.

The schema is owned by Alembic migrations in ``eucalite/migrations``; :func:`upgrade` brings
any database (SQLite by default, or any SQLAlchemy URL) to the newest revision, so a new
release never drops data. Models never call ``create_all``.
"""
from __future__ import annotations

import json
import logging
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from alembic import command
from alembic.config import Config as AlembicConfig
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers run beside the one writer; FULL sync makes a commit survive power loss;
    the busy timeout makes concurrent writers wait instead of failing."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def load_json(text: str | None, default: Any = None) -> Any:
    return json.loads(text) if text else default


def dump_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"),
                                                  ensure_ascii=False)


class JsonFields:
    """``foo_json`` text columns read and written as Python values through ``foo``."""

    def get_json(self, name: str, default: Any = None) -> Any:
        return load_json(getattr(self, name + "_json"), default)

    def set_json(self, name: str, value: Any) -> None:
        setattr(self, name + "_json", dump_json(value))


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to *revision* on the database at *url* (idempotent)."""
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


#: Serializes this process's SQLite writers. SQLite's own busy handler makes a waiting writer
#: sleep in growing steps (up to 100 ms), which under concurrent small writes costs far more
#: than the writes; waiting on a lock in process wakes the next writer the moment the last
#: one commits.
_sqlite_writer = threading.Lock()
_held = threading.local()


def write_lock() -> None:
    """Start the session's next transaction as a writer, before it reads; the lock is held
    until that transaction commits or rolls back.

    SQLite upgrades a reading transaction to a writing one only if nobody wrote since it
    began; otherwise it fails with "database is locked" whatever the busy timeout. Taking
    the write lock first (BEGIN IMMEDIATE) makes read-modify-write sequences wait their turn
    instead. Ends any transaction the session had open. Other databases rely on their own
    row locks and unique constraints.
    """
    from sqlalchemy import text

    db.session.rollback()
    if db.engine.dialect.name == "sqlite":
        _sqlite_writer.acquire()
        _held.active = True
        try:
            db.session.execute(text("BEGIN IMMEDIATE"))
        except BaseException:
            _release_writer()
            raise


@contextmanager
def writing() -> Iterator[None]:
    """One write transaction (:func:`write_lock` first): committed when the block ends,
    rolled back (and the lock let go) when it raises."""
    write_lock()
    try:
        yield
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def _release_writer(*_args) -> None:
    if getattr(_held, "active", False):
        _held.active = False
        _sqlite_writer.release()


# Whichever way the writer's transaction ends, the next writer may go.
event.listen(Session, "after_commit", _release_writer)
event.listen(Session, "after_rollback", _release_writer)
event.listen(Session, "after_soft_rollback", _release_writer)
