"""Login profiles: a user's console password as IAM manages it. Passwords are set the
console's way (:func:`eucalite.web.session.set_password`: the one rule in
:func:`eucalite.accounts.store_password`, and the user's console sessions end); this adds
the profile's own fields."""
from __future__ import annotations

from ..accounts import User
from ..db import db
from ..errors.iam import AccessDenied, EntityAlreadyExists, NoSuchEntity, \
    PasswordPolicyViolation, ValidationError
from ..web import session, signins
from . import users


def get(account_id: str, user_name: str) -> User:
    """The user, if it has a login profile."""
    user = users.get(account_id, user_name)
    if user.password_hash is None:
        raise NoSuchEntity(f"Login Profile for User {user_name} cannot be found.")
    return user


def _set(user: User, account_name: str, password: str) -> None:
    try:
        session.set_password(account_name, user.name, password)
    except ValidationError as error:
        raise PasswordPolicyViolation(f"Password does not conform to the account password "
                                      f"policy: {error.message}")


def create(account_id: str, account_name: str, user_name: str, password: str,
           reset_required: bool) -> User:
    user = users.get(account_id, user_name)
    if user.password_hash is not None:
        raise EntityAlreadyExists(f"Login Profile for user {user_name} already exists.")
    _set(user, account_name, password)
    user.password_reset_required = reset_required
    db.session.commit()
    return user


def update(account_id: str, account_name: str, user_name: str, password: str | None,
           reset_required: bool | None) -> None:
    user = get(account_id, user_name)
    if password is not None:
        _set(user, account_name, password)
    if reset_required is not None:
        user.password_reset_required = reset_required
    db.session.commit()


def delete(account_id: str, user_name: str) -> None:
    """Remove the password: the user can no longer sign in, and its sessions end."""
    user = get(account_id, user_name)
    user.password_hash = None
    user.password_created = None
    user.password_reset_required = False
    signins.end_all(user)                   # commits with it


def change(account_id: str, account_name: str, user_name: str, old: str, new: str,
           keep_session: str | None = None) -> None:
    """The user's own password change (IAM's ChangePassword, and the console's required
    reset): *old* must be the current password; *new* goes through the one password rule;
    a required reset is cleared; the user's other console sessions end (not the one of
    token *keep_session*)."""
    user = get(account_id, user_name)
    if not session.check_password(account_name, user_name, old):
        raise AccessDenied("The old password is incorrect.")
    if old == new:
        raise PasswordPolicyViolation("Password does not conform to the account password "
                                      "policy: the new password must differ from the old.")
    try:
        session.set_password(account_name, user_name, new, keep_session)
    except ValidationError as error:
        raise PasswordPolicyViolation(f"Password does not conform to the account password "
                                      f"policy: {error.message}")
    user.password_reset_required = False
    db.session.commit()
