"""The IAM Query adapter's registry and the renderings its actions share (AWS's member
names from botocore's iam model). Handlers call only :class:`.service.IamService`."""
from __future__ import annotations

from urllib.parse import quote

from ..accounts import Group, User
from ..query import ActionRegistry, QueryParams
from . import common

registry = ActionRegistry("iam")

PAGED = ("Marker", "MaxItems")


def user(row: User, tags: dict[str, str] | None = None) -> dict:
    return {"Path": row.path, "UserName": row.name, "UserId": row.id,
            "Arn": common.arn(row.account_id, "user", row.path, row.name),
            "CreateDate": row.created, "Tags": tag_list(tags) if tags else None}


def group(row: Group) -> dict:
    return {"Path": row.path, "GroupName": row.name, "GroupId": row.id,
            "Arn": common.arn(row.account_id, "group", row.path, row.name),
            "CreateDate": row.created}


def policy_text(text: str) -> str:
    """A policy document as IAM returns every one: URL-encoded (boto3 and the aws CLI
    decode it)."""
    return quote(text, safe="")


def tag_list(tags: dict[str, str]) -> list[dict]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def read_tags(params: QueryParams) -> dict[str, str]:
    """``Tags.member.N.Key``/``.Value`` as a dict."""
    tags = {}
    for item in params.get_struct("Tags").structs("member"):
        key = item.get("Key")
        if key is None:
            raise common.invalid(None, "tags.member.key", "Member must not be null")
        tags[key] = item.get("Value") or ""
    return tags


def member_list(params: QueryParams, name: str) -> list[str]:
    """``Name.member.N`` as a list of values."""
    return params.get_struct(name).scalars("member")


def path_prefix(params: QueryParams) -> str:
    value = params.get("PathPrefix")
    return "/" if value is None else common.check(value, common.PATH_PREFIX, "PathPrefix",
                                                  common.MAX_PATH)


def optional_bool(params: QueryParams, name: str) -> bool | None:
    return None if params.get(name) is None else params.get_bool(name)
