"""Console sessions as the server knows them: one :class:`~eucalite.accounts.ConsoleSession`
row per sign-in, found by the token the browser's cookie carries.

A session is valid while its row exists and was seen within the session lifetime; so
ending it here ends it for every copy of the cookie. Sign-out ends one session, a password
change all of the user's (but the one that made the change), and deleting the user or its
account deletes its rows with it. Each function commits.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from ..accounts import ConsoleSession, User, utcnow
from ..db import db

#: A session's last_seen is written at most this often: pages and the tables refreshing
#: every few seconds would otherwise write to the database on every request.
TOUCH_EVERY = dt.timedelta(seconds=60)


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start(user: User, lifetime: dt.timedelta) -> str:
    """A new session for *user*; returns its token (for the cookie). Sessions that expired
    without a sign-out are removed on the way."""
    now = utcnow()
    db.session.execute(db.delete(ConsoleSession).where(
        ConsoleSession.last_seen < now - lifetime))
    token = secrets.token_urlsafe(32)
    db.session.add(ConsoleSession(id=_key(token), user_id=user.id, created=now,
                                  last_seen=now))
    db.session.commit()
    return token


def find(token: str | None, lifetime: dt.timedelta) -> User | None:
    """The user signed in with *token*, or None when the session ended or expired. A valid
    session is seen now (its expiry slides on)."""
    if not token:
        return None
    row = db.session.get(ConsoleSession, _key(token))
    if row is None:
        return None
    now = utcnow()
    if row.last_seen < now - lifetime:
        end(token)
        return None
    if now - row.last_seen > TOUCH_EVERY:
        row.last_seen = now
        db.session.commit()
    return db.session.get(User, row.user_id)


def end(token: str | None) -> None:
    """End the session of *token* (nothing if there is none)."""
    if token:
        db.session.execute(db.delete(ConsoleSession).where(ConsoleSession.id == _key(token)))
        db.session.commit()


def end_all(user: User, keep: str | None = None) -> None:
    """End every session of *user* except the one of token *keep*."""
    query = db.delete(ConsoleSession).where(ConsoleSession.user_id == user.id)
    if keep:
        query = query.where(ConsoleSession.id != _key(keep))
    db.session.execute(query)
    db.session.commit()
