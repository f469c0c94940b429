"""Temporary credentials: minting STS sessions, resolving a session's access key when a
request is signed with it, and the rotating credentials of an instance profile's role.

A session (:class:`~eucalite.identity.StsSession`) is an ``ASIA...`` access key id, a
secret and an opaque session token, valid until its expiry, standing for a user (STS
GetSessionToken) or for a role (AssumeRole, or an instance's profile). It sits at the
identity layer, beside :mod:`.identity`, because both STS (``eucalite.sts``) and the
cloud controller's metadata service mint sessions, and every signature check
(:mod:`.auth`) resolves them.

Deleting the user, role or account behind a session deletes it (ON DELETE CASCADE), so its
key stops working at once. Expired rows are purged lazily: each mint deletes the rows
that expired more than :data:`KEEP_EXPIRED` ago (kept that long so that a client still
using them hears "expired", not "invalid").
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from . import db as db_module, identity, ids
from .accounts import Account, Principal, User, utcnow
from .db import db
from .identity import InstanceProfile, InstanceProfileRole, Role, StsSession

#: What every temporary access key id starts with (AWS's prefix for them).
SESSION_KEY_PREFIX = "ASIA"
#: How long an instance profile's credentials are valid, and how little may remain before
#: the metadata service hands out fresh ones (AWS: about 6 h, rotated ahead of expiry).
INSTANCE_SECONDS = 6 * 3600
INSTANCE_REFRESH = dt.timedelta(hours=1)
#: How long an expired session's row is kept before a mint purges it.
KEEP_EXPIRED = dt.timedelta(days=1)


def is_session_key(access_key_id: str) -> bool:
    return access_key_id.startswith(SESSION_KEY_PREFIX)


@dataclass(frozen=True)
class SessionKey:
    """A session as a signature check needs it: who it acts as, its secret and token, and
    until when (naive UTC). *user_session* is a GetSessionToken session (of a user)."""

    principal: Principal
    secret: str
    token: str
    expires: dt.datetime

    @property
    def user_session(self) -> bool:
        return self.principal.role_id is None

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or utcnow()) >= self.expires


def resolve(access_key_id: str) -> SessionKey | None:
    """The session behind *access_key_id*, expired or not, or None (one joined query: this
    runs on every request signed with a session key)."""
    # Columns, not the ORM entity: loading an object costs more than the query.
    row = db.session.execute(
        db.select(StsSession.secret, StsSession.token, StsSession.expires,
                  StsSession.account_id, StsSession.user_id, StsSession.role_id,
                  StsSession.session_name, Account.name, User.name, Role.name)
        .join(Account, StsSession.account_id == Account.id)
        .outerjoin(User, StsSession.user_id == User.id)
        .outerjoin(Role, StsSession.role_id == Role.id)
        .where(StsSession.access_key_id == access_key_id)).first()
    if row is None:
        return None
    (secret, token, expires, account_id, user_id, role_id, session_name, account_name,
     user_name, role_name) = row
    if role_id is not None:
        principal = Principal(account_id=account_id, account_name=account_name,
                              user_id=f"{role_id}:{session_name}", user_name=role_name,
                              access_key_id=access_key_id, role_id=role_id,
                              role_name=role_name, session_name=session_name)
    else:
        principal = Principal(account_id=account_id, account_name=account_name,
                              user_id=user_id, user_name=user_name,
                              access_key_id=access_key_id)
    return SessionKey(principal, secret, token, expires)


def mint(account_id: str, seconds: int, *, user_id: str | None = None,
         role_id: str | None = None, session_name: str | None = None,
         instance_id: str | None = None) -> StsSession:
    """New temporary credentials valid for *seconds*, for user *user_id* or role *role_id*
    (with *session_name*; *instance_id* for an instance profile's). Commits; purges the
    rows expired more than :data:`KEEP_EXPIRED` ago; a role's last use (IAM's
    RoleLastUsed) is now."""
    now = utcnow()
    row = StsSession(access_key_id=ids.session_key_id(), secret=ids.secret_access_key(),
                     token=ids.session_token(), account_id=account_id, user_id=user_id,
                     role_id=role_id, session_name=session_name, instance_id=instance_id,
                     created=now, expires=now + dt.timedelta(seconds=seconds))
    with db_module.writing():
        db.session.execute(db.delete(StsSession)
                           .where(StsSession.expires < now - KEEP_EXPIRED))
        db.session.add(row)
        if role_id is not None:
            db.session.execute(db.update(Role).where(Role.id == role_id).values(last_used=now))
    return row


# --- instance profiles ---------------------------------------------------------------

@dataclass(frozen=True)
class InstanceRole:
    """What an instance's metadata says about its profile's role: *code* ``Success`` with
    *session* (current credentials), or AWS's failure code and *message*; *role_name* is
    None when the profile holds no role."""

    code: str
    role_name: str | None
    session: StsSession | None = None
    message: str = ""


def instance_role(account_id: str, profile_id: str, instance_id: str) -> InstanceRole | None:
    """The credentials an instance with profile *profile_id* gets from its metadata: the
    newest session of the profile's role for *instance_id* while more than
    :data:`INSTANCE_REFRESH` of it remains, else a new one valid :data:`INSTANCE_SECONDS`.
    None when the profile is gone. A role whose trust policy does not let EC2 assume it
    gets AWS's ``AssumeRoleUnauthorizedAccess`` and no credentials."""
    profile = db.session.get(InstanceProfile, profile_id)
    if profile is None or profile.account_id != account_id:
        return None
    role = db.session.execute(
        db.select(Role).join(InstanceProfileRole, InstanceProfileRole.role_id == Role.id)
        .where(InstanceProfileRole.profile_id == profile_id)).scalars().first()
    if role is None:
        return InstanceRole("Success", None)
    if not identity.may_assume(role, identity.EC2_SERVICE).allowed:
        return InstanceRole("AssumeRoleUnauthorizedAccess", role.name, message=(
            f"EC2 cannot assume the role {role.name}.  Please see documentation at "
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/RolesTroubleshooting.html"
            "#troubleshoot_iam-ec2_errors-info-doc."))
    current = db.session.execute(
        db.select(StsSession).where(StsSession.instance_id == instance_id,
                                    StsSession.role_id == role.id)
        .order_by(StsSession.expires.desc())).scalars().first()
    if current is None or current.expires - utcnow() <= INSTANCE_REFRESH:
        current = mint(account_id, INSTANCE_SECONDS, role_id=role.id,
                       session_name=instance_id, instance_id=instance_id)
    return InstanceRole("Success", role.name, current)
