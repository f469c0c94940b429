"""The SQLAlchemy instance, SQLite tuning, the one-writer lock and schema migrations.

State changes go through :mod:`eucalite.statemachine`'s one compare-and-swap.

The schema is owned by Alembic migrations in ``eucalite/migrations``; :func:`upgrade` brings
any database (SQLite by default, or PostgreSQL through psycopg 3) to the newest revision, so
a new release never drops data. Models never call ``create_all``.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from alembic import command
from alembic.config import Config as AlembicConfig
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.sql.elements import ColumnElement

from . import fsutil

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

#: Indexes a migration makes on one database only, which the models cannot declare (a
#: collation Alembic does not compare): comparisons of the schema with the models skip them.
MIGRATION_ONLY_INDEXES = frozenset({
    "ix_s3_objects_listing_bytewise",    # PostgreSQL: S3 listings in byte order (0011)
})


def compared(obj, name, type_, reflected, compare_to) -> bool:
    """Alembic's ``include_object``: whether a schema comparison looks at *name*."""
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


@event.listens_for(Engine, "connect")
def _connection_setup(dbapi_connection, _record) -> None:
    """SQLite: WAL lets readers run beside the one writer; FULL sync makes a commit survive
    power loss; the busy timeout makes concurrent writers wait instead of failing.
    PostgreSQL: strings may hold NUL (see _nul_safe_psycopg)."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
    elif type(dbapi_connection).__module__.startswith("psycopg"):
        _nul_safe_psycopg(dbapi_connection)


def bytewise(column: Any) -> ColumnElement:
    """*column* compared and sorted by its bytes (code points), whatever the database's
    collation: S3 lists keys in UTF-8 byte order ("B" < "Z" < "a" < "é"). SQLite's default
    BINARY collation already is; PostgreSQL's follows the locale unless told ``COLLATE "C"``.
    Use it wherever the order matters: ``order_by(bytewise(col))``, ``bytewise(col) > x``."""
    return _Bytewise(column)


class _Bytewise(ColumnElement):
    inherit_cache = True

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(_Bytewise)
def _bytewise_default(element: _Bytewise, compiler, **kw) -> str:
    return compiler.process(element.column, **kw)


@compiles(_Bytewise, "postgresql")
def _bytewise_postgresql(element: _Bytewise, compiler, **kw) -> str:
    return compiler.process(element.column, **kw) + ' COLLATE "C"'


# PostgreSQL text cannot hold NUL, which S3 keys and other client strings may contain (and
# SQLite stores). On PostgreSQL connections every str goes in with NUL as \x01\x01 and
# \x01 as \x01\x02, and comes back unescaped: one-to-one and order-preserving (byte order
# of the escaped text is that of the original), so lookups, uniqueness and listings behave
# as on SQLite. Only strings with a \x00 or \x01 change.
_NUL_ESCAPE = str.maketrans({"\x01": "\x01\x02", "\x00": "\x01\x01"})
_NUL_ESCAPED = re.compile("\x01([\x01\x02])")


def _escape_nul(value: str) -> str:
    return value.translate(_NUL_ESCAPE) if "\x00" in value or "\x01" in value else value


def _unescape_nul(value: str) -> str:
    if "\x01" not in value:
        return value
    return _NUL_ESCAPED.sub(lambda m: "\x00" if m.group(1) == "\x01" else "\x01", value)


def _nul_safe_psycopg(connection) -> None:
    """Register the escaping above on one psycopg connection (text-format parameters as
    psycopg sends str by default, with the unknown type so the server infers it)."""
    from psycopg.adapt import Dumper, Loader

    class NulSafeDumper(Dumper):
        oid = 0

        def dump(self, obj: str) -> bytes:
            return _escape_nul(obj).encode()

    class NulSafeLoader(Loader):
        def load(self, data) -> str:
            return _unescape_nul(bytes(data).decode())

    connection.adapters.register_dumper(str, NulSafeDumper)
    for name in ("text", "varchar"):
        connection.adapters.register_loader(name, NulSafeLoader)


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


#: PostgreSQL URL schemes a user may write, all served by psycopg 3 (the ``postgresql``
#: extra): SQLAlchemy would otherwise pick psycopg2 for the bare scheme.
_POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def engine_url(url: str) -> str:
    """*url* as SQLAlchemy should open it: ``postgresql://`` and ``postgres://`` become
    ``postgresql+psycopg://``; anything else (SQLite, an explicit driver) is kept."""
    for scheme in _POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    return url


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine_url(url).replace("%", "%%"))
    return cfg


def require_driver(url: str) -> None:
    """Raise ValueError saying what to install when *url* is PostgreSQL and psycopg (the
    ``postgresql`` extra) is missing, rather than an ImportError from deep in SQLAlchemy."""
    if not engine_url(url).startswith("postgresql+psycopg://"):
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ValueError("database_url names a PostgreSQL server, but its driver is not "
                         "installed: pip install 'eucalite[postgresql]' (psycopg 3)") from None


def upgrade(url: str, revision: str = "head") -> None:
    """Apply every migration up to *revision* on the database at *url* (idempotent)."""
    require_driver(url)
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)
    if engine_url(url).startswith("postgresql"):
        _warn_unless_byte_order(url)


#: PostgreSQL collations that are byte order (as SQLite's default BINARY is).
_BYTE_ORDER_COLLATIONS = {"C", "POSIX", "C.UTF-8", "C.utf8"}


def _warn_unless_byte_order(url: str) -> None:
    """Log a warning when the PostgreSQL database collates by a locale: S3 listings keep
    byte order (:func:`bytewise`), but other sorted answers (tag keys, names) follow it."""
    from sqlalchemy import create_engine, text

    engine = create_engine(engine_url(url))
    try:
        with engine.connect() as conn:
            provider, collation = conn.execute(text(
                "SELECT datlocprovider, datcollate FROM pg_database "
                "WHERE datname = current_database()")).one()
    finally:
        engine.dispose()
    if provider != "c" or collation not in _BYTE_ORDER_COLLATIONS:
        log.warning("the PostgreSQL database collates by a locale (%s), not byte order: "
                    "sorted answers other than S3 listings follow it. Create it with "
                    "LOCALE 'C.UTF-8' TEMPLATE template0 to sort as SQLite does.",
                    collation if provider == "c" else "ICU")


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine

    engine = create_engine(engine_url(url))
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

#: Group commit of SQLite writers. A writer's transaction (write_lock) commits with
#: ``synchronous=NORMAL``: its pages reach the write-ahead log without an fsync, under the
#: writer lock; then, with the lock already let go, the committing thread waits for one
#: fdatasync of the log that began after its commit — shared with every writer that
#: committed meanwhile — before the commit returns. A write is thus on disk before it is
#: acknowledged, as with ``synchronous=FULL``, but the next writer need not wait for the
#: previous one's fsync, and concurrent writers pay for one. NORMAL keeps SQLite's own
#: checkpoints safe (it syncs the log before and the database after each). Unlike FULL, a
#: commit is visible to other connections for the moment before its fsync ends: a reader
#: may see a write that a power cut in that moment would take back (a kill -9 would not:
#: the log is written, only not yet flushed). Should that fsync fail, nothing can be
#: known of what reached the disk, so the process ends (as PostgreSQL does) rather than
#: acknowledge, or undo around, a commit it cannot vouch for.
_wal_syncs = fsutil.GroupSync(fsutil.fdatasync_file)

#: The PostgreSQL advisory lock every writer takes (any number; "eucalite" in ASCII). It is
#: transaction-scoped, so it is held across processes and hosts sharing the database and
#: let go by the commit or rollback that ends the writer's transaction.
_PG_WRITER_KEY = 0x65756361_6C697465


def write_lock() -> None:
    """Start the session's next transaction as a writer, before it reads; the lock is held
    until that transaction commits or rolls back.

    SQLite upgrades a reading transaction to a writing one only if nobody wrote since it
    began; otherwise it fails with "database is locked" whatever the busy timeout. Taking
    the write lock first (BEGIN IMMEDIATE) makes read-modify-write sequences wait their turn
    instead. On PostgreSQL the same one-writer-at-a-time rule is a transaction-scoped
    advisory lock (``pg_advisory_xact_lock``): its READ COMMITTED statements then see every
    commit made before the lock was granted, as BEGIN IMMEDIATE's do. Ends any transaction
    the session had open.
    """
    from sqlalchemy import text

    db.session.rollback()
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITER_KEY})
    elif dialect == "sqlite":
        _sqlite_writer.acquire()
        _held.active = True
        try:
            dbapi = _group_commit(db.session.connection())
            # on the driver's connection: the session's execute of a text statement costs
            # more than the statement (the session's transaction is the same either way)
            dbapi.execute("BEGIN IMMEDIATE")
        except BaseException:
            _end_writer()
            raise


def _group_commit(connection) -> Any:
    """Make the writer's coming commit one of the group commit (see ``_wal_syncs``): set
    before BEGIN, as SQLite allows the change only outside a transaction. Databases with
    no log file (in memory) keep their setting. Returns the driver's (sqlite3) connection."""
    dbapi = connection.connection.dbapi_connection
    path = connection.engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return dbapi
    dbapi.execute("PRAGMA synchronous=NORMAL")
    _held.group = (dbapi, Path(path + "-wal"))
    return dbapi


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


def execute_core(statement: Any, params: dict[str, Any] | None = None) -> Any:
    """Run *statement*, a Core statement on tables (no mapped classes in it), in the
    session's transaction on its connection, and return the result. For the hottest
    statements: the session's own ``execute`` adds ORM bookkeeping such a statement has
    no use for (a fifth of a one-row statement's cost); it would not autoflush before
    one either."""
    return db.session.connection().execute(statement, params)


def once_per_transaction(key: Any, load: Callable[[], Any]) -> Any:
    """*load()*'s answer, loaded once per transaction of the session and then remembered
    under *key* until that transaction ends (commit, rollback, the write lock's fresh one).

    For a row looked up by name several times in one request: within one transaction the
    session's identity map hands back the same object, its columns as first loaded, so a
    repeated lookup only costs a query. A remembered object deleted since is loaded again.
    """
    session = db.session()
    transaction = session.get_transaction()
    memo = session.info.setdefault("once_per_transaction", {})
    if transaction is not None:
        cached = memo.get(key)
        if cached is not None and cached[0] is transaction and not _deleted(cached[1]):
            return cached[1]
    value = load()
    memo[key] = (session.get_transaction(), value)
    return value


def _deleted(value: Any) -> bool:
    """Whether *value* is a mapped object the session has deleted (plain values and rows
    read with Core statements never are)."""
    state = inspect(value, raiseerr=False) if value is not None else None
    return state is not None and state.deleted


def _release_writer(*_args) -> None:
    if getattr(_held, "active", False):
        _held.active = False
        _sqlite_writer.release()


def _leave_group() -> Path | None:
    """The log a group-commit writer must flush (None for other transactions); its
    connection is back to ``synchronous=FULL`` for whatever it runs next."""
    group = getattr(_held, "group", None)
    if group is None:
        return None
    _held.group = None
    dbapi, wal = group
    dbapi.execute("PRAGMA synchronous=FULL")
    return wal


def _commit_writer(*_args) -> None:
    """After a commit: the next writer may go; a group-commit writer then waits for its
    share of the log's fsync (see ``_wal_syncs``)."""
    wal = _leave_group()
    _release_writer()
    if wal is None:
        return
    try:
        _wal_syncs.sync(wal)
    except OSError:
        log.critical("fsync of %s failed after a commit: stopping, as whether the commit "
                     "is on disk cannot be known", wal, exc_info=True)
        os._exit(70)


def _end_writer(*_args) -> None:
    _leave_group()
    _release_writer()


# Whichever way the writer's transaction ends, the next writer may go.
event.listen(Session, "after_commit", _commit_writer)
event.listen(Session, "after_rollback", _end_writer)
event.listen(Session, "after_soft_rollback", _end_writer)
