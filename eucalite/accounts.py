"""Accounts, users and access keys, in the Eucalyptus (and IAM) model.

Every signed request resolves to an access key, hence to a user and the account that owns
it; that pair is the :class:`Principal` services receive. The cloud-admin account is
``eucalyptus``; every account has an ``admin`` user, created with the account.

This module sits at the top of the package (not in ``compute/``) because every API, S3
included, authenticates through it, and dependencies point from the roles to it.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from dataclasses import dataclass

from sqlalchemy import ForeignKey, String, UniqueConstraint, bindparam
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug import security

from . import ids
from .db import db
from .errors.iam import EntityAlreadyExists, LimitExceeded, NoSuchEntity, ValidationError

log = logging.getLogger(__name__)

ADMIN_ACCOUNT = "eucalyptus"
ADMIN_USER = "admin"

#: The console password rule (IAM's login profiles, the console and the CLI all set
#: passwords through :func:`store_password`).
PASSWORD_MIN_LENGTH = 8

_ACCOUNT_NAME = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")      # whole name (fullmatch)
# IAM's characters, ASCII only (\w would take any letter, and $ a trailing newline).
USER_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,64}")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # IAM's account alias: at most one per account, unique across the cloud.
    alias: Mapped[str | None] = mapped_column(String(63), unique=True, index=True,
                                              default=None)

    users: Mapped[list["User"]] = relationship(back_populates="account",
                                               cascade="all, delete-orphan")


class User(db.Model):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(512), default="/")
    # Set by a later console issue; None means the user cannot sign in to the console.
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    # The login profile's other fields (IAM's CreateLoginProfile): set with the password.
    password_created: Mapped[dt.datetime | None] = mapped_column(default=None)
    password_reset_required: Mapped[bool] = mapped_column(default=False)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)

    account: Mapped[Account] = relationship(back_populates="users")
    keys: Mapped[list["AccessKey"]] = relationship(back_populates="user",
                                                   cascade="all, delete-orphan")


class AccessKey(db.Model):
    __tablename__ = "access_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the access key id
    # Stored as is: HMAC verification needs the secret itself, as in AWS.
    secret: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="Active")  # Active | Inactive
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # IAM's GetAccessKeyLastUsed: written by note_key_used, at most once a minute per key.
    last_used: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_service: Mapped[str | None] = mapped_column(String(32), default=None)
    last_used_region: Mapped[str | None] = mapped_column(String(64), default=None)

    user: Mapped[User] = relationship(back_populates="keys")


class Group(db.Model):
    """An IAM group of users in one account."""

    __tablename__ = "iam_groups"
    __table_args__ = (UniqueConstraint("account_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)     # AGPA...
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(128))
    path: Mapped[str] = mapped_column(String(512), default="/")
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GroupMember(db.Model):
    """A user's membership of a group (deleting either deletes it: ON DELETE CASCADE)."""

    __tablename__ = "iam_group_members"

    group_id: Mapped[str] = mapped_column(ForeignKey("iam_groups.id", ondelete="CASCADE"),
                                          primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True, index=True)


class UserTag(db.Model):
    """One tag on an IAM user (key unique per user)."""

    __tablename__ = "iam_user_tags"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")


class ConsoleSession(db.Model):
    """One signed-in console session (a browser's sign-in). The cookie carries a random
    token; the row keeps only its hash, so the database cannot be replayed as cookies.
    Deleting the row ends the session, whatever cookie a browser still holds; deleting the
    user (or its account) deletes its rows (ON DELETE CASCADE)."""

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)   # sha256 hex of the token
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    created: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Moved on as the user works (sliding expiry); the session ends console_session_minutes
    # after it.
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


@dataclass(frozen=True)
class Principal:
    """Who is calling: what every service function is given instead of a request.

    A user signs with its own key; temporary credentials (STS) sign as a *session*: of the
    same user (GetSessionToken; *role_id* None) or of a role (AssumeRole, an instance
    profile): then *role_id*, *role_name* and *session_name* are set, *user_id* is
    ``<role id>:<session name>`` (AWS's ``aws:userid``) and *user_name* the role's name,
    which names no user: nothing may treat a role session as a user of that name (see
    :attr:`is_root`)."""

    account_id: str
    account_name: str
    user_id: str
    user_name: str
    access_key_id: str
    role_id: str | None = None
    role_name: str | None = None
    session_name: str | None = None

    @property
    def is_cloud_admin(self) -> bool:
        """The cloud admin: the ``eucalyptus`` account's root. Its other users and role
        sessions are ordinary callers, with what their policies give them."""
        return self.account_name == ADMIN_ACCOUNT and self.is_root

    @property
    def is_root(self) -> bool:
        """The account's root (its ``admin`` user, or a session of it): it may do anything
        in its account, whatever policies say."""
        return self.role_id is None and self.user_name == ADMIN_USER

    @property
    def arn(self) -> str:
        if self.role_id is not None:
            return (f"arn:aws:sts::{self.account_id}:assumed-role/{self.role_name}/"
                    f"{self.session_name}")
        return f"arn:aws:iam::{self.account_id}:user/{self.user_name}"


# --- queries --------------------------------------------------------------------------

def get_account(name: str) -> Account:
    account = db.session.execute(db.select(Account).filter_by(name=name)).scalar_one_or_none()
    if account is None:
        raise NoSuchEntity(f"The account with name {name} cannot be found.")
    return account


def get_user(account_name: str, user_name: str) -> User:
    account = get_account(account_name)
    user = db.session.execute(
        db.select(User).filter_by(account_id=account.id, name=user_name)).scalar_one_or_none()
    if user is None:
        raise NoSuchEntity(f"The user with name {user_name} cannot be found in account "
                           f"{account_name}.")
    return user


def list_accounts() -> list[Account]:
    return list(db.session.execute(db.select(Account).order_by(Account.name)).scalars())


def list_users(account_name: str) -> list[User]:
    account = get_account(account_name)
    return sorted(account.users, key=lambda user: user.name)


def principal_of(user: User) -> Principal:
    """*user* as the principal a host operator, the console or a background duty acts as
    (no signed request: the key id is the user's first active key, or empty)."""
    active = [key for key in user.keys if key.status == "Active"]
    return Principal(account_id=user.account.id, account_name=user.account.name,
                     user_id=user.id, user_name=user.name,
                     access_key_id=active[0].id if active else "")


# Built once: every signed request runs it, and building a select costs more than its
# (cached) compiled form does to run.
_KEY_LOOKUP = (db.select(AccessKey.secret, AccessKey.status, User.id, User.name, Account.id,
                         Account.name)
               .join(User, AccessKey.user_id == User.id)
               .join(Account, User.account_id == Account.id)
               .where(AccessKey.id == bindparam("key_id")))


def root_principal(account_id: str) -> Principal:
    """The account's root user as a principal: who a service acts as on the account's
    behalf (AWS acts through the account's service-linked roles: CloudWatch's alarm
    actions, Auto Scaling's launches)."""
    user = db.session.execute(db.select(User).where(User.account_id == account_id,
                                                    User.name == ADMIN_USER)).scalar_one()
    return principal_of(user)


def principal_for_key(access_key_id: str) -> tuple[Principal, str] | None:
    """The principal and secret behind an *active* access key, or None.

    One joined query: this runs on every signed request, so it goes to the session's
    connection (same transaction) as a Core statement, without the ORM's execution layer
    (it loads no ORM objects; nothing a request has pending needs flushing before it).
    """
    row = db.session.connection().execute(_KEY_LOOKUP, {"key_id": access_key_id}).first()
    if row is None or row[1] != "Active":
        return None
    secret, _, user_id, user_name, account_id, account_name = row
    principal = Principal(account_id=account_id, account_name=account_name, user_id=user_id,
                          user_name=user_name, access_key_id=access_key_id)
    return principal, secret


# --- changes (each commits) -----------------------------------------------------------

def create_account(name: str) -> Account:
    """Create account *name* with its ``admin`` user (no access key yet)."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ValidationError(f"Invalid account name {name!r}: use 3-63 lower-case letters, "
                              "digits and hyphens, starting and ending with a letter or digit.")
    exists = db.session.execute(db.select(Account).filter_by(name=name)).scalar_one_or_none()
    if exists is not None:
        raise EntityAlreadyExists(f"Account {name} already exists.")
    number = ids.account_number()
    while db.session.get(Account, number) is not None:
        number = ids.account_number()
    account = Account(id=number, name=name)
    account.users.append(User(id=ids.unique_id("AIDA"), name=ADMIN_USER, path="/"))
    db.session.add(account)
    db.session.commit()
    return account


def delete_account(name: str) -> None:
    if name == ADMIN_ACCOUNT:
        raise ValidationError("The cloud-admin account eucalyptus cannot be deleted.")
    db.session.delete(get_account(name))
    db.session.commit()


def create_user(account_name: str, user_name: str, path: str = "/") -> User:
    if not USER_NAME.fullmatch(user_name):
        raise ValidationError(f"Invalid user name {user_name!r}: up to 64 letters, digits "
                              "and +=,.@_- characters.")
    account = get_account(account_name)
    if any(user.name == user_name for user in account.users):
        raise EntityAlreadyExists(f"User with name {user_name} already exists.")
    user = User(id=ids.unique_id("AIDA"), name=user_name, path=path or "/")
    account.users.append(user)
    db.session.commit()
    return user


def store_password(user: User, password: str) -> None:
    """Check *password* against the one password rule and keep its hash on *user* (with
    when it was set); the caller commits (and ends the user's console sessions)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValidationError(f"A console password needs at least {PASSWORD_MIN_LENGTH} "
                              "characters.")
    user.password_hash = security.generate_password_hash(password)
    user.password_created = utcnow()


def delete_user(account_name: str, user_name: str) -> None:
    db.session.delete(get_user(account_name, user_name))
    db.session.commit()


def create_access_key(account_name: str, user_name: str) -> AccessKey:
    """A new active key pair for the user. AWS allows two keys per user; so do we."""
    user = get_user(account_name, user_name)
    if len(user.keys) >= 2:
        raise LimitExceeded(f"Cannot exceed quota for AccessKeysPerUser: 2 (user {user_name} "
                            f"in account {account_name} already has two keys).")
    key = AccessKey(id=ids.access_key_id(), secret=ids.secret_access_key(), status="Active")
    user.keys.append(key)
    db.session.commit()
    return key


def key_not_found(access_key_id: str) -> NoSuchEntity:
    """IAM's error for an access key that does not exist (or that the caller may not see)."""
    return NoSuchEntity(f"The Access Key with id {access_key_id} cannot be found.")


def get_access_key(access_key_id: str) -> AccessKey:
    key = db.session.get(AccessKey, access_key_id)
    if key is None:
        raise key_not_found(access_key_id)
    return key


def set_access_key_status(access_key_id: str, status: str) -> AccessKey:
    if status not in ("Active", "Inactive"):
        raise ValidationError("Status must be Active or Inactive.")
    key = get_access_key(access_key_id)
    key.status = status
    db.session.commit()
    return key


def delete_access_key(access_key_id: str) -> None:
    db.session.delete(get_access_key(access_key_id))
    db.session.commit()


#: A key's last use is written at most this often: every signed request would otherwise
#: write to the database.
KEY_USE_EVERY = dt.timedelta(seconds=60)
_key_use_written: dict[str, dt.datetime] = {}       # key id -> when this process wrote it


def note_key_used(access_key_id: str, service: str, region: str | None) -> None:
    """Record that *access_key_id* signed a request to *service* in *region* (V2 signatures
    name no region: None), for GetAccessKeyLastUsed. Cheap: one write per key per
    :data:`KEY_USE_EVERY` in this (the one) server process, and on a thread of its own, so
    the request neither waits for it nor runs a statement more for it."""
    now = utcnow()
    last = _key_use_written.get(access_key_id)
    if last is not None and now - last < KEY_USE_EVERY:
        return
    _key_use_written[access_key_id] = now
    statement = db.update(AccessKey).where(AccessKey.id == access_key_id).values(
        last_used=now, last_used_service=service, last_used_region=region)
    threading.Thread(target=_write_key_use, args=(db.engine, statement), daemon=True,
                     name="key-last-used").start()


def _write_key_use(engine, statement) -> None:
    try:
        with engine.begin() as connection:
            connection.execute(statement)
    except SQLAlchemyError:
        # Advisory data: a server stopping (its database gone) loses one last-use time.
        log.debug("could not record an access key's last use", exc_info=True)


def bootstrap() -> AccessKey | None:
    """Make sure the cloud-admin account, its admin user and one access key exist.

    Idempotent: returns the key it created, or None when everything was already there.
    """
    try:
        get_account(ADMIN_ACCOUNT)
    except NoSuchEntity:
        create_account(ADMIN_ACCOUNT)
    admin = get_user(ADMIN_ACCOUNT, ADMIN_USER)
    if admin.keys:
        return None
    return create_access_key(ADMIN_ACCOUNT, ADMIN_USER)


def first_active_key(account_name: str, user_name: str) -> AccessKey:
    """The oldest active key of the user (what `eucalite credentials` prints)."""
    user = get_user(account_name, user_name)
    active = sorted((key for key in user.keys if key.status == "Active"),
                    key=lambda key: key.created)
    if not active:
        raise NoSuchEntity(f"User {user_name} in account {account_name} has no active access "
                           f"key; create one with: eucalite account key-create "
                           f"{account_name} {user_name}")
    return active[0]
