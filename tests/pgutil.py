"""PostgreSQL for the tests: when EUCALITE_TEST_DATABASE_URL names a server (``./setup.sh
test`` starts a private one for its second pass), every test gets a database of its own,
copied from a template migrated once per test process, and dropped after the test.

The URL's database is only used to connect for CREATE/DROP DATABASE (``postgres`` will do).
Test databases collate as C.UTF-8 (byte order), as the README asks of a cloud's database, so
every ordering matches SQLite's; tests/test_postgresql.py makes ICU ``en-US`` ones (a
Debian server's usual locale) to show S3 listings keep byte order even there.
"""
from __future__ import annotations

import os
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from eucalite import db as db_module

#: Read once at import: the test fixtures clear every EUCALITE_* variable per test.
URL = os.environ.get("EUCALITE_TEST_DATABASE_URL", "")
SKIP_REASON = ("PostgreSQL only: set EUCALITE_TEST_DATABASE_URL (./setup.sh test starts a "
               "private server and sets it for its PostgreSQL pass)")

_admin: Engine | None = None
_template: str | None = None


def admin() -> Engine:
    """An AUTOCOMMIT engine on the server (CREATE/DROP DATABASE cannot run in a transaction)."""
    global _admin
    if _admin is None:
        _admin = create_engine(db_module.engine_url(URL), isolation_level="AUTOCOMMIT")
    return _admin


def url_for(name: str) -> str:
    """The server's URL with database *name*."""
    return make_url(db_module.engine_url(URL)).set(database=name) \
        .render_as_string(hide_password=False)


def create_database(name: str, template: str = "template0", *, icu: bool = False) -> None:
    """CREATE DATABASE *name*: a copy of *template*, or with template0 an empty one in
    UTF-8 collating as C.UTF-8 (byte order), or with *icu* as ICU en-US."""
    if template != "template0":
        options = ""
    elif icu:
        options = " ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    else:
        options = " ENCODING 'UTF8' LOCALE 'C.UTF-8'"
    with admin().connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"{options}'))


def drop_database(name: str) -> None:
    """Drop *name*, ending whatever connections a test's servers still hold on it."""
    with admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def migrated_template() -> str:
    """This process's template database, migrated to head on first use (each pytest-xdist
    worker has its own: CREATE DATABASE refuses a template someone is connected to)."""
    global _template
    if _template is None:
        name = f"eucalite_tmpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        create_database(name)
        db_module.upgrade(url_for(name))
        _template = name
    return _template


def fresh_database() -> str:
    """A new database at head for one test; returns its name (drop it with drop_database)."""
    name = "eucalite_t_" + uuid.uuid4().hex[:16]
    create_database(name, migrated_template())
    return name


def drop_template() -> None:
    global _template
    if _template is not None:
        drop_database(_template)
        _template = None
