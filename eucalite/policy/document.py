"""Policy documents, pure: the JSON text validated against a :class:`Grammar` into a
:class:`Policy` of :class:`Statement` s.

:func:`parse` checks what AWS checks for every kind: a JSON object within the grammar's
size, Version, a non-empty Statement (list or single object) of statements with Sid, Effect,
Principal/NotPrincipal (required or forbidden by the grammar), Action/NotAction,
Resource/NotResource and Condition, unique Sids, known condition operators with
well-formed values. The grammar says which error and which sentence the client gets.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import AwsError
from .conditions import Condition, parse_conditions
from .grammar import VERSION_2008, VERSION_2012, Grammar, Malformed, check_limit_statement

ALLOW, DENY, LIMIT = "Allow", "Deny", "Limit"   # Limit: a quota (grammar.QUOTA_KEYS)
VERSIONS = (VERSION_2008, VERSION_2012)


@dataclass(frozen=True)
class Statement:
    """A validated statement. Principals are tuples such as ``("*",)``,
    ``("account", "123456789012")``, ``("user", "123456789012", "alice")``,
    ``("canonical", hex)``, ``("service", name)``, and in trust policies
    ``("role", account, name)`` and ``("session", account, role name, session name)``; of each pair Action/NotAction,
    Resource/NotResource and Principal/NotPrincipal at most one is set (None: absent)."""

    sid: str | None
    effect: str
    principals: tuple[tuple[str, ...], ...] | None
    not_principals: tuple[tuple[str, ...], ...] | None
    actions: tuple[str, ...] | None
    not_actions: tuple[str, ...] | None
    resources: tuple[str, ...] | None
    not_resources: tuple[str, ...] | None
    conditions: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class Policy:
    """A parsed policy document (see :func:`parse`)."""

    version: str
    id: str | None
    statements: tuple[Statement, ...]

    @property
    def uses_variables(self) -> bool:
        """Policy variables (``${aws:username}``) are substituted only in version 2012."""
        return self.version == VERSION_2012


# --- values ---------------------------------------------------------------------------

_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                     "Resource", "NotResource", "Condition"}
_ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
_ROOT_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):root\Z")
_USER_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):user/((?:[A-Za-z0-9_+=,.@-]+/)*)"
                       r"([A-Za-z0-9_+=,.@-]{1,64})\Z")
# Roles and their sessions, which only a trust policy names here (Grammar.role_principals).
_ROLE_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):role/((?:[A-Za-z0-9_+=,.@-]+/)*)"
                       r"([A-Za-z0-9_+=,.@-]{1,64})\Z")
_SESSION_ARN = re.compile(r"^arn:aws:sts::([0-9]{12}):assumed-role/([A-Za-z0-9_+=,.@-]{1,64})/"
                          r"([A-Za-z0-9_=,.@-]{2,64})\Z")
_ACTION_NAME = re.compile(r"^[A-Za-z0-9*?]+\Z")
_VENDOR = re.compile(r"^[A-Za-z0-9.-]+\Z")


def _string_list(value: Any, reason: str) -> tuple[str, ...]:
    """A JSON string or non-empty list of strings, else Malformed(*reason*)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise Malformed(reason, principal=value, resource=value)


def _aws_principal(value: str, grammar: Grammar,
                   principal_exists: Callable[[str], bool] | None) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    if _ACCOUNT_ID.match(value):
        principal, arn = ("account", value), f"arn:aws:iam::{value}:root"
    elif (match := _ROOT_ARN.match(value)):
        principal, arn = ("account", match.group(1)), value
    elif (match := _USER_ARN.match(value)):
        principal, arn = ("user", match.group(1), match.group(3)), value
    elif grammar.role_principals and (match := _ROLE_ARN.match(value)):
        principal, arn = ("role", match.group(1), match.group(3)), value
    elif grammar.role_principals and (match := _SESSION_ARN.match(value)):
        # a session exists while its role does: the hook is asked about the role
        principal = ("session", match.group(1), match.group(2), match.group(3))
        arn = f"arn:aws:iam::{match.group(1)}:role/{match.group(2)}"
    else:
        raise Malformed("principal", principal=value)
    if principal_exists is not None and not principal_exists(arn):
        raise Malformed("principal", principal=value)
    return principal


def _principals(value: Any, grammar: Grammar,
                principal_exists: Callable[[str], bool] | None) -> tuple[tuple[str, ...], ...]:
    """``"*"`` or ``{"AWS": ..., "CanonicalUser": ..., "Service": ...}``."""
    if value == "*":
        return (("*",),)
    if not isinstance(value, dict) or not value:
        raise Malformed("principal", principal=value)
    found: list[tuple[str, ...]] = []
    for kind, entries in value.items():
        for entry in _string_list(entries, "principal"):
            entry = entry.strip()
            if kind == "AWS":
                found.append(_aws_principal(entry, grammar, principal_exists))
            elif kind == "CanonicalUser" and grammar.canonical_id and grammar.canonical_id(entry):
                if principal_exists is not None and not principal_exists(entry):
                    raise Malformed("principal", principal=entry)
                found.append(("canonical", entry))
            elif kind == "Service" and entry:
                found.append(("service", entry))
            else:
                raise Malformed("principal", principal=entry)
    return tuple(found)


def _list_reason(value: Any, grammar: Grammar, element: str) -> str:
    """Why an Action or Resource value that is no string list is refused: a service's own
    grammar has one sentence; IAM says an empty list is missing, anything else a syntax
    error."""
    if grammar.action_services is not None:
        return element
    return f"missing_{element}" if value == [] else "syntax"


def _check_action(action: str, grammar: Grammar) -> None:
    if action == "*":
        return
    if grammar.action_services is not None:     # a service's own policy: its actions only
        vendor, _, name = action.partition(":")
        if vendor.lower() not in grammar.action_services or not _ACTION_NAME.match(name):
            raise Malformed("action", action=action)
        return
    parts = action.split(":")
    if len(parts) == 1:
        raise Malformed("action_vendor", action=action)
    if len(parts) > 2:
        raise Malformed("action_colon", action=action)
    if not _VENDOR.match(parts[0]):
        raise Malformed("action_vendor_invalid", vendor=parts[0])


def _actions(value: Any, grammar: Grammar) -> tuple[str, ...]:
    actions = _string_list(value, _list_reason(value, grammar, "action"))
    for action in actions:
        _check_action(action, grammar)
    return actions


def _resources(value: Any, grammar: Grammar) -> tuple[str, ...]:
    resources = _string_list(value, _list_reason(value, grammar, "resource"))
    if grammar.action_services is None:          # IAM: an ARN (its partition aws) or "*"
        for resource in resources:
            if resource == "*":
                continue
            if ":" not in resource:
                raise Malformed("resource_arn", resource=resource)
            partition = resource.split(":")[1]
            if partition != "aws":
                raise Malformed("resource_partition", partition=partition, resource=resource)
    return resources


# --- statements -----------------------------------------------------------------------

def _check_fields(raw: dict, grammar: Grammar) -> None:
    for name in raw:
        if name not in _STATEMENT_FIELDS:
            raise Malformed("unknown_field", name=name)
    pairs = [("Action", "NotAction", "missing_action")]
    if grammar.requires_resource:
        pairs.append(("Resource", "NotResource", "missing_resource"))
    if grammar.principal == "required":
        pairs.insert(0, ("Principal", "NotPrincipal", "missing_principal"))
    elif "Principal" in raw or "NotPrincipal" in raw:
        raise Malformed("principal_forbidden")
    for first, second, missing in pairs:
        if first in raw and second in raw:
            raise Malformed("both", first=first, second=second)
        if first not in raw and second not in raw:
            raise Malformed(missing, name=first)
    for name in grammar.prohibited_fields:
        if name in raw:
            raise Malformed("prohibited", name=name)
    if "Effect" not in raw:
        raise Malformed("missing_effect", name="Effect")
    limit = grammar.limits and raw["Effect"] == LIMIT
    if raw["Effect"] not in (ALLOW, DENY) and not limit:
        raise Malformed("effect", effect=raw["Effect"])
    if "Sid" in raw and not isinstance(raw["Sid"], str):
        raise Malformed("sid_type")


def _statement(raw: Any, grammar: Grammar,
               principal_exists: Callable[[str], bool] | None) -> Statement:
    if not isinstance(raw, dict):
        raise Malformed("json")
    _check_fields(raw, grammar)

    def optional(name: str, parser: Callable[..., Any], *args: Any) -> Any:
        return parser(raw[name], *args) if name in raw else None

    statement = Statement(
        sid=raw.get("Sid"), effect=raw["Effect"],
        principals=optional("Principal", _principals, grammar, principal_exists),
        not_principals=optional("NotPrincipal", _principals, grammar, principal_exists),
        actions=optional("Action", _actions, grammar),
        not_actions=optional("NotAction", _actions, grammar),
        resources=optional("Resource", _resources, grammar),
        not_resources=optional("NotResource", _resources, grammar),
        conditions=parse_conditions(raw.get("Condition", {}), grammar.condition_key))
    if statement.effect == LIMIT:
        check_limit_statement(statement)
    if grammar.check_statement is not None:
        grammar.check_statement(statement)
    return statement


# --- documents ------------------------------------------------------------------------

def _load_json(text: str | bytes, grammar: Grammar) -> dict[str, Any]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed("json")
    if len(text) > 16 * grammar.max_size:        # not worth parsing to find out
        raise Malformed("size")
    if not text.lstrip().startswith("{"):
        raise Malformed("json_first_byte")
    try:
        data = json.loads(text)
    except ValueError:
        raise Malformed("json")
    if not isinstance(data, dict):  # pragma: no cover - '{' checked above
        raise Malformed("json")
    try:
        minified = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:      # a lone surrogate escape ("\ud800"): no text at all
        raise Malformed("json")
    if len(minified) > grammar.max_size:
        raise Malformed("size")
    return data


def _document(text: str | bytes, grammar: Grammar,
              principal_exists: Callable[[str], bool] | None) -> Policy:
    data = _load_json(text, grammar)
    for name in data:
        if name not in ("Version", "Id", "Statement"):
            raise Malformed("unknown_field", name=name)
    version = data.get("Version", grammar.default_version)
    if version is not None and version not in VERSIONS:
        raise Malformed("version")
    if version is None or version < grammar.min_version:
        raise Malformed("old_version")
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise Malformed("id_type")
    if "Statement" not in data:
        raise Malformed("missing_statement")
    raw = data["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise Malformed("empty_statement")
    statements = tuple(_statement(item, grammar, principal_exists) for item in raw_statements)
    sids = [statement.sid for statement in statements if statement.sid]
    if len(sids) != len(set(sids)):
        raise Malformed("sid_unique")
    return Policy(version=version, id=policy_id, statements=statements)


def parse(text: str | bytes, grammar: Grammar, *,
          principal_exists: Callable[[str], bool] | None = None) -> Policy:
    """Validate a policy document of *grammar*'s kind; the grammar's error when invalid.

    *principal_exists*, given an account principal's root ARN, a user ARN, a role ARN
    (for a role or one of its sessions) or a canonical id, says whether it exists (AWS
    refuses principals it cannot resolve); without it any well-formed principal is
    accepted.
    """
    try:
        return _document(text, grammar, principal_exists)
    except Malformed as malformed:
        raise grammar.error_for(malformed) from None


def check(text: str | bytes, grammar: Grammar) -> AwsError | None:
    """The error :func:`parse` would raise for *text*, or None when it is valid (for a
    console editor that validates before saving)."""
    try:
        parse(text, grammar)
    except AwsError as error:
        return error
    return None
