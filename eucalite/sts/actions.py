"""The STS Query adapter: its registry and actions (GetCallerIdentity, AssumeRole,
GetSessionToken), parameters checked in STS's words (botocore's sts model), results in
its shapes. Handlers call only :class:`.service.StsService`."""
from __future__ import annotations

import re

from .. import integers
from ..iam import common
from ..query import ActionRegistry, QueryParams
from .service import Issued

registry = ActionRegistry("sts")

SESSION_NAME = re.compile(r"[\w+=,.@-]*", re.ASCII)
EXTERNAL_ID = re.compile(r"[\w+=,.@:/-]*", re.ASCII)


def _length(value: str, member: str, low: int, high: int) -> str:
    if len(value) < low:
        raise common.invalid(value, member, f"Member must have length greater than or equal "
                                            f"to {low}")
    if len(value) > high:
        raise common.invalid(value, member, f"Member must have length less than or equal to "
                                            f"{high}")
    return value


def _pattern(value: str, member: str, pattern: re.Pattern) -> str:
    if not pattern.fullmatch(value):
        raise common.invalid(value, member, "Member must satisfy regular expression pattern: "
                                            + pattern.pattern)
    return value


def duration(params: QueryParams, low: int, high: int) -> int | None:
    """``DurationSeconds`` within *low*..*high*, or None when absent."""
    text = params.get("DurationSeconds")
    if text is None:
        return None
    value = integers.parse(text, signed=True)
    if value is None:
        raise common.invalid(text, "durationSeconds", "Member must be an integer")
    if value < low:
        raise common.invalid(text, "durationSeconds",
                             f"Member must have value greater than or equal to {low}")
    if value > high:
        raise common.invalid(text, "durationSeconds",
                             f"Member must have value less than or equal to {high}")
    return value


def credentials(issued: Issued) -> dict:
    session = issued.session
    return {"AccessKeyId": session.access_key_id, "SecretAccessKey": session.secret,
            "SessionToken": session.token, "Expiration": session.expires}


def _given(params: QueryParams, name: str) -> bool:
    return any(key == name or key.startswith(name + ".") for key in params.flat)


@registry.action("GetCallerIdentity")
def get_caller_identity(call):
    return call.services.sts.caller_identity(call.principal)


@registry.action("AssumeRole", params=(
        "RoleArn", "RoleSessionName", "DurationSeconds", "Policy", "PolicyArns", "Tags",
        "TransitiveTagKeys", "ExternalId", "SerialNumber", "TokenCode", "SourceIdentity"))
def assume_role(call):
    params = call.params
    role_arn = _length(common.required(params, "RoleArn"), "roleArn", 20, 2048)
    name = common.required(params, "RoleSessionName")
    _pattern(_length(name, "roleSessionName", 2, 64), "roleSessionName", SESSION_NAME)
    seconds = duration(params, 900, 43200) or 3600
    external_id = params.get("ExternalId")
    if external_id is not None:
        _pattern(_length(external_id, "externalId", 2, 1224), "externalId", EXTERNAL_ID)
    issued = call.services.sts.assume_role(
        call.principal, role_arn, name, seconds, external_id=external_id,
        policy=params.get("Policy"), policy_arns=_given(params, "PolicyArns"),
        tags=_given(params, "Tags") or _given(params, "TransitiveTagKeys"),
        source_identity=params.get("SourceIdentity"),
        mfa=params.get("SerialNumber") is not None or params.get("TokenCode") is not None)
    return {"Credentials": credentials(issued),
            "AssumedRoleUser": {"AssumedRoleId": issued.assumed_id,
                                "Arn": issued.assumed_arn}}


@registry.action("GetSessionToken", params=("DurationSeconds", "SerialNumber", "TokenCode"))
def get_session_token(call):
    params = call.params
    issued = call.services.sts.session_token(
        call.principal, duration(params, 900, 129600),
        mfa=params.get("SerialNumber") is not None or params.get("TokenCode") is not None)
    return {"Credentials": credentials(issued)}
