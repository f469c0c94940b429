"""StsService: the Security Token Service's one entry point. Who the caller is
(GetCallerIdentity), temporary credentials of a role (AssumeRole, its trust policy checked
by :func:`eucalite.identity.may_assume`) or of the caller itself (GetSessionToken), and
DecodeAuthorizationMessage over :mod:`eucalite.access`. The sessions themselves are minted
by :mod:`eucalite.sessions`, which the metadata service shares.

Session policies, session tags and source identities are refused, not ignored: a session
row keeps none of them, so accepting one would hand out broader credentials than the
caller asked for (or tags that no condition would ever see).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import access, identity, sessions
from ..accounts import Principal
from ..db import db
from ..errors.iam import AccessDenied, ValidationError
from ..identity import Role, StsSession
from ..policy import arns, document, grammar

#: AssumeRole's RoleArn: a role of an account, with its path.
ROLE_ARN = re.compile(r"arn:aws:iam::([0-9]{12}):role/((?:[\x21-\x2e\x30-\x7e]+/)*)"
                      r"([A-Za-z0-9_+=,.@-]{1,64})")
#: AWS's limit on a role session assumed by a role session ("role chaining").
CHAINED_MAX_SECONDS = 3600
#: GetSessionToken: the default for users (their maximum, 36 h, is the adapter's bound),
#: and the account root's default and maximum.
SESSION_TOKEN_DEFAULT = 43200
SESSION_TOKEN_ROOT_MAX = 3600

UNSUPPORTED = ("eucalite does not keep {what} with temporary credentials, so it refuses them "
               "rather than ignore them; call {action} without {names}.")


@dataclass(frozen=True)
class Issued:
    """Temporary credentials as STS returns them; *assumed_arn*/*assumed_id* for a role's."""

    session: StsSession
    assumed_arn: str | None = None
    assumed_id: str | None = None


class StsService:
    def __init__(self, config: dict[str, Any]):
        self.config = config

    # --- who is calling -------------------------------------------------------------

    def caller_identity(self, principal: Principal) -> dict[str, str]:
        """GetCallerIdentity: ``UserId``, ``Account``, ``Arn`` (a user's ARN with its path;
        a role session's ``assumed-role`` ARN and ``<role id>:<session>`` id). Every caller
        may ask, whatever its policies say (as on AWS)."""
        return {"UserId": principal.user_id, "Account": principal.account_id,
                "Arn": access.identity_of(principal).arn}

    # --- AssumeRole -------------------------------------------------------------------

    def assume_role(self, principal: Principal, role_arn: str, session_name: str,
                    seconds: int, *, external_id: str | None = None,
                    policy: str | None = None, policy_arns: bool = False,
                    tags: bool = False, source_identity: str | None = None,
                    mfa: bool = False) -> Issued:
        """Credentials of the role *role_arn* for *seconds*, session *session_name*.

        AccessDenied (AWS's sentence) unless the role exists and may be assumed by
        *principal* (trust policy and, where AWS needs it, the caller's own policies); a
        role session may assume a role for at most an hour (role chaining), any other
        caller up to the role's MaxSessionDuration (ValidationError beyond)."""
        self._refuse_unsupported("AssumeRole", policy, policy_arns, tags, source_identity,
                                 mfa)
        role = self._role(principal, role_arn)
        keys = {"sts:RoleSessionName": session_name}
        if external_id is not None:
            keys["sts:ExternalId"] = external_id
        if role is None or not identity.may_assume(
                role, principal, {**access.request_keys(), **keys}).allowed:
            raise AccessDenied(f"User: {access.identity_of(principal).arn} is not authorized "
                               f"to perform: sts:AssumeRole on resource: {role_arn}")
        if principal.role_id is not None and seconds > CHAINED_MAX_SECONDS:
            raise ValidationError("The requested DurationSeconds exceeds the 1 hour session "
                                  "limit for roles assumed by role chaining.")
        if seconds > role.max_session_duration:
            raise ValidationError("The requested DurationSeconds exceeds the "
                                  "MaxSessionDuration set for this role.")
        session = sessions.mint(role.account_id, seconds, role_id=role.id,
                                session_name=session_name)
        return Issued(session,
                      f"arn:aws:sts::{role.account_id}:assumed-role/{role.name}/{session_name}",
                      f"{role.id}:{session_name}")

    def _role(self, principal: Principal, role_arn: str) -> Role | None:
        match = ROLE_ARN.fullmatch(role_arn)
        if match is None:
            raise ValidationError("Request ARN is invalid")
        account_id, _, name = match.groups()
        role = db.session.execute(db.select(Role).filter_by(
            account_id=account_id, name=name)).scalar_one_or_none()
        # The ARN must name the role with its path, as IAM writes it.
        if role is None or arns.iam(account_id, "role", name, role.path) != role_arn:
            return None
        return role

    @staticmethod
    def _refuse_unsupported(action: str, policy: str | None, policy_arns: bool, tags: bool,
                            source_identity: str | None, mfa: bool) -> None:
        if mfa:
            # eucalite has no MFA devices, so no serial number is ever this user's.
            raise AccessDenied("MultiFactorAuthentication failed, unable to validate MFA "
                               "code. Please verify your MFA serial number is valid and "
                               "associated with this user.")
        if policy is not None:
            # A malformed document is told as such first, as AWS does.
            document.parse(policy, grammar.IAM_INLINE_USER)
        if policy is not None or policy_arns:
            raise ValidationError(UNSUPPORTED.format(
                what="session policies", action=action, names="Policy and PolicyArns"))
        if tags:
            raise ValidationError(UNSUPPORTED.format(
                what="session tags", action=action, names="Tags and TransitiveTagKeys"))
        if source_identity is not None:
            raise ValidationError(UNSUPPORTED.format(
                what="a source identity", action=action, names="SourceIdentity"))

    # --- GetSessionToken ----------------------------------------------------------------

    def session_token(self, principal: Principal, seconds: int | None,
                      mfa: bool = False) -> Issued:
        """Credentials of the calling user itself, for *seconds* (default 12 h; the
        account's root at most an hour). Sessions cannot ask (AccessDenied, AWS's text)."""
        if sessions.is_session_key(principal.access_key_id):
            raise AccessDenied("Cannot call GetSessionToken with session credentials")
        self._refuse_unsupported("GetSessionToken", None, False, False, None, mfa)
        if principal.is_root:
            seconds = min(seconds or SESSION_TOKEN_ROOT_MAX, SESSION_TOKEN_ROOT_MAX)
        session = sessions.mint(principal.account_id, seconds or SESSION_TOKEN_DEFAULT,
                                user_id=principal.user_id)
        return Issued(session)


    # --- DecodeAuthorizationMessage -----------------------------------------------------

    def decode_authorization_message(self, principal: Principal, text: str) -> str:
        """The decoded JSON of an encoded authorization message, for a caller allowed
        ``sts:DecodeAuthorizationMessage`` (the account's root always is)."""
        try:
            access.require(principal, "sts:DecodeAuthorizationMessage", "*")
        except access.Denied as denied:
            raise AccessDenied(f"User: {denied.caller_arn} is not authorized to perform: "
                               "sts:DecodeAuthorizationMessage") from None
        return access.decode_authorization_message(principal, text)
