"""Rules every IAM action shares: parameter validation in IAM's words, ARNs, Marker/MaxItems
paging, and the gate every action passes (:func:`authorize`).

Validation errors read as AWS's (``1 validation error detected: Value 'x' at 'userName'
failed to satisfy constraint: …``), so a client sees the same ``ValidationError`` whether
boto3 checked the value first or not.
"""
from __future__ import annotations

import re
from typing import Callable, TypeVar

from .. import access, integers, paging
from ..accounts import USER_NAME, Principal
from ..db import db
from ..errors import AwsError
from ..errors.iam import AccessDenied, ValidationError
from ..query import QueryParams

T = TypeVar("T")

# IAM's patterns (botocore's iam model), ASCII only: \w would take any letter.
GROUP_NAME = re.compile(r"[A-Za-z0-9_+=,.@-]{1,128}")
PATH = re.compile(r"/|/[\x21-\x7e]+/")
PATH_PREFIX = re.compile(r"/[\x21-\x7f]*")
ACCOUNT_ALIAS = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")
ACCESS_KEY_ID = re.compile(r"[\w]{16,128}")
MAX_PATH = 512
DEFAULT_MAX_ITEMS = 100


def invalid(value: str | None, member: str, constraint: str) -> ValidationError:
    shown = "null" if value is None else f"'{value}'"
    return ValidationError(f"1 validation error detected: Value {shown} at '{member}' failed "
                           f"to satisfy constraint: {constraint}")


def required(params: QueryParams, name: str) -> str:
    """Parameter *name*, which IAM requires."""
    value = params.get(name)
    if value is None:
        raise invalid(None, _member(name), "Member must not be null")
    return value


def _member(name: str) -> str:
    return name[0].lower() + name[1:]


def check(value: str, pattern: re.Pattern, name: str, maximum: int | None = None) -> str:
    """*value* of parameter *name* if it matches IAM's *pattern* (whole) and length."""
    if maximum is not None and len(value) > maximum:
        raise invalid(value, _member(name),
                      f"Member must have length less than or equal to {maximum}")
    if not pattern.fullmatch(value):
        raise invalid(value, _member(name),
                      f"Member must satisfy regular expression pattern: {pattern.pattern}")
    return value


def user_name(value: str, name: str = "UserName") -> str:
    return check(value, USER_NAME, name)


def group_name(value: str, name: str = "GroupName") -> str:
    return check(value, GROUP_NAME, name)


def path(value: str | None, name: str = "Path") -> str:
    """A path parameter (``/`` when absent)."""
    return "/" if value is None else check(value, PATH, name, MAX_PATH)


def arn(account_id: str, kind: str, entity_path: str, entity_name: str) -> str:
    """``arn:aws:iam::<account>:<kind><path><name>`` (kind ``user`` or ``group``)."""
    return f"arn:aws:iam::{account_id}:{kind}{entity_path}{entity_name}"


def by_path(model, account_id: str, path_prefix: str) -> list:
    """The account's *model* rows (users, groups, roles: each has ``account_id``, ``name``
    and ``path``) whose path starts with *path_prefix*, by name: IAM's List actions."""
    query = db.select(model).filter_by(account_id=account_id).order_by(model.name)
    return [row for row in db.session.execute(query).scalars()
            if row.path.startswith(path_prefix)]


# --- paging ---------------------------------------------------------------------------

class Page:
    """``Marker``/``MaxItems`` of one List request, read before any work is done."""

    def __init__(self, params: QueryParams):
        self.marker = params.get("Marker")
        text = params.get("MaxItems")
        self.max_items = DEFAULT_MAX_ITEMS
        if text is not None:
            value = integers.parse(text, minimum=1, maximum=1000)
            if value is None:
                raise invalid(text, "maxItems", "Member must have value between 1 and 1000")
            self.max_items = value

    def cut(self, items: list[T], key: Callable[[T], str]) -> tuple[list[T], str | None]:
        """One page of *items* (in the same order on every call) and the next Marker."""
        try:
            return paging.paginate(items, self.max_items, self.marker, key=key)
        except AwsError:
            raise ValidationError("Invalid Marker.")

    def result(self, member: str, items: list[T], key: Callable[[T], str],
               render: Callable[[T], dict]) -> dict:
        """A List action's result: *member*, ``IsTruncated`` and ``Marker`` when truncated."""
        page, marker = self.cut(items, key)
        return {member: [render(item) for item in page], "IsTruncated": marker is not None,
                "Marker": marker}


# --- who may call -----------------------------------------------------------------------

def authorize(principal: Principal, action: str, resource: str) -> None:
    """AccessDenied unless the gate (:func:`eucalite.access.require`) lets *principal* take
    ``iam:<action>`` on *resource* (the entity's ARN with its path, or ``*``). The message
    is IAM's, naming the caller's ARN (with its path) and saying when an explicit deny
    decided."""
    try:
        access.require(principal, f"iam:{action}", resource)
    except access.Denied as denied:
        message = (f"User: {denied.caller_arn} is not authorized to perform: iam:{action} "
                   f"on resource: {resource}")
        if denied.explicit:
            message += " with an explicit deny in an identity-based policy"
        raise AccessDenied(message) from None
