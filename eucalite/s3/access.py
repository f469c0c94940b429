"""S3 access control, pure: canonical ids, ACLs, bucket policies and the decision that
combines them. Nothing here touches HTTP or the database; the S3 adapter feeds it stored
JSON, request headers and bodies, and lookup functions.

* :func:`canonical_id` - the 64-hex canonical user id S3 shows for an account.
* ACLs - :class:`Grant` and :class:`Acl` (``to_json``/``from_json`` for a JSON column),
  :func:`canned_acl`, :func:`acl_from_headers` (``x-amz-acl`` / ``x-amz-grant-*``),
  :func:`acl_from_xml` / :func:`acl_to_xml` (the ``AccessControlPolicy`` document) and
  :func:`acl_allows`.
* Bucket policies - :func:`parse_policy` validates the JSON document the way S3 does
  (``MalformedPolicy`` with S3's messages) into a :class:`Policy`; :func:`evaluate` answers
  ``"Allow"``, ``"Deny"`` or None for one request, conditions included.
* :func:`decide` - the one rule the adapter applies: explicit Deny, then ownership, then
  policy Allow, then the ACL.

Errors are :class:`~eucalite.errors.AwsError` subclasses carrying S3's codes.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping
from xml.etree import ElementTree as ET

from .. import wildcards as glob
from ..accounts import ADMIN_USER, Principal
from ..errors import AwsError
from ..xmlutil import S3_NAMESPACE, document
from .xmlbody import MalformedXML, child_text, parse

# --- errors ---------------------------------------------------------------------------


class InvalidArgument(AwsError):
    code, status = "InvalidArgument", 400


class InvalidRequest(AwsError):
    code, status = "InvalidRequest", 400


class MalformedACLError(AwsError):
    code, status = "MalformedACLError", 400

    def __init__(self, message: str = "The XML you provided was not well-formed or did not "
                                      "validate against our published schema"):
        super().__init__(message)


class UnresolvableGrantByEmailAddress(AwsError):
    code, status = "UnresolvableGrantByEmailAddress", 400

    def __init__(self, message: str = "The e-mail address you provided does not match any "
                                      "account on record."):
        super().__init__(message)


class AccessDenied(AwsError):
    code, status = "AccessDenied", 403

    def __init__(self, message: str = "Access Denied"):
        super().__init__(message)


class MalformedPolicy(AwsError):
    code, status = "MalformedPolicy", 400


# --- canonical ids --------------------------------------------------------------------

_CANONICAL_PREFIX = b"eucalite-s3-canonical-user:"
_CANONICAL_ID = re.compile(r"^[0-9a-f]{64}\Z")


def canonical_id(account_id: str) -> str:
    """The stable canonical user id (64 lower-case hex digits) of account *account_id*."""
    return hashlib.sha256(_CANONICAL_PREFIX + account_id.encode("utf-8")).hexdigest()


def requester_canonical(requester: Principal | None) -> str | None:
    """The canonical id of the requester's account, None for anonymous."""
    return None if requester is None else canonical_id(requester.account_id)


# --- ACL model ------------------------------------------------------------------------

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
AUTHENTICATED_USERS = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers"
LOG_DELIVERY = "http://acs.amazonaws.com/groups/s3/LogDelivery"
GROUPS = (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY)

CANONICAL_USER = "CanonicalUser"
GROUP = "Group"

FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP = (
    "FULL_CONTROL", "READ", "WRITE", "READ_ACP", "WRITE_ACP")
PERMISSIONS = (FULL_CONTROL, READ, WRITE, READ_ACP, WRITE_ACP)

XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
#: S3 accepts at most this many grants in one ACL.
MAX_GRANTS = 100


@dataclass(frozen=True)
class Grant:
    """One ACL entry: *grantee* (a canonical id or a group URI) holds *permission*."""

    grantee_type: str  # CANONICAL_USER | GROUP
    grantee: str
    permission: str

    def to_json(self) -> dict[str, str]:
        return {"type": self.grantee_type, "grantee": self.grantee,
                "permission": self.permission}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Grant":
        grant = cls(str(data["type"]), str(data["grantee"]), str(data["permission"]))
        if grant.grantee_type not in (CANONICAL_USER, GROUP) or \
                grant.permission not in PERMISSIONS:
            raise ValueError(f"not a stored S3 grant: {dict(data)!r}")
        return grant


@dataclass
class Acl:
    """The owner (canonical id) of a bucket or object and the grants on it."""

    owner: str
    grants: list[Grant] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for a JSON column; :meth:`from_json` reads it back."""
        return {"owner": self.owner, "grants": [grant.to_json() for grant in self.grants]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Acl":
        return cls(str(data["owner"]), [Grant.from_json(g) for g in data.get("grants", [])])


def _user(canonical: str, permission: str) -> Grant:
    return Grant(CANONICAL_USER, canonical, permission)


def _group(uri: str, permission: str) -> Grant:
    return Grant(GROUP, uri, permission)


def _canned_grants(name: str, owner: str, bucket_owner: str | None) -> list[Grant] | None:
    extra_owner = bucket_owner if bucket_owner and bucket_owner != owner else None
    table: dict[str, list[Grant]] = {
        "private": [],
        "public-read": [_group(ALL_USERS, READ)],
        "public-read-write": [_group(ALL_USERS, READ), _group(ALL_USERS, WRITE)],
        "authenticated-read": [_group(AUTHENTICATED_USERS, READ)],
        # Meaningful on objects only; on a bucket (no other owner) they mean private.
        "bucket-owner-read": [_user(extra_owner, READ)] if extra_owner else [],
        "bucket-owner-full-control":
            [_user(extra_owner, FULL_CONTROL)] if extra_owner else [],
        "log-delivery-write": [_group(LOG_DELIVERY, WRITE), _group(LOG_DELIVERY, READ_ACP)],
        # AWS adds a READ grant for EC2's bundle reader; eucalite's EC2 reads images with
        # the cloud's own authority, so the owner grant is all there is.
        "aws-exec-read": [],
    }
    extra = table.get(name)
    return None if extra is None else [_user(owner, FULL_CONTROL), *extra]


def canned_acl(name: str, owner_canonical: str,
               bucket_owner_canonical: str | None = None) -> Acl:
    """The ACL a canned ACL name stands for; the owner always gets FULL_CONTROL.

    ``bucket-owner-read`` / ``bucket-owner-full-control`` also grant the owner of the
    bucket (when it is someone else) READ / FULL_CONTROL, as on AWS.
    """
    grants = _canned_grants(name, owner_canonical, bucket_owner_canonical)
    if grants is None:
        raise InvalidArgument(f"Invalid canned ACL: {name}", ArgumentName="x-amz-acl",
                              ArgumentValue=name)
    return Acl(owner_canonical, grants)


# --- ACL from headers -----------------------------------------------------------------

#: request header -> the permission it grants, in the order grants are listed.
GRANT_HEADERS = {
    "x-amz-grant-full-control": FULL_CONTROL,
    "x-amz-grant-read": READ,
    "x-amz-grant-write": WRITE,
    "x-amz-grant-read-acp": READ_ACP,
    "x-amz-grant-write-acp": WRITE_ACP,
}

_GRANTEE_ITEM = re.compile(r'\s*([A-Za-z]+)\s*=\s*(?:"([^"]*)"|([^,"\s]+))\s*(,|$)')


def _parse_grantees(header: str, value: str) -> list[tuple[str, str]]:
    """``id="...", uri="..."`` -> [("id", "..."), ("uri", "...")]."""
    items: list[tuple[str, str]] = []
    position = 0
    text = value.strip()
    while position < len(text):
        match = _GRANTEE_ITEM.match(text, position)
        if match is None:
            raise InvalidArgument(f"Invalid grant header value: {value}", ArgumentName=header,
                                  ArgumentValue=value)
        items.append((match.group(1).lower(), match.group(2) if match.group(2) is not None
                      else match.group(3)))
        position = match.end()
    if not items:
        raise InvalidArgument(f"Invalid grant header value: {value}", ArgumentName=header,
                              ArgumentValue=value)
    return items


def _resolve_grantee(kind: str, value: str,
                     known_canonical: Callable[[str], bool] | None) -> tuple[str, str]:
    """A header or XML grantee -> (grantee_type, grantee), or the error S3 reports."""
    if kind == "emailaddress":
        raise UnresolvableGrantByEmailAddress()
    if kind == "uri":
        if value not in GROUPS:
            raise InvalidArgument(f"Invalid group uri: {value}", ArgumentName="uri",
                                  ArgumentValue=value)
        return GROUP, value
    if kind == "id":
        if not _CANONICAL_ID.match(value) or (known_canonical is not None
                                              and not known_canonical(value)):
            raise InvalidArgument("Invalid id", ArgumentName="CanonicalUser/ID",
                                  ArgumentValue=value)
        return CANONICAL_USER, value
    raise InvalidArgument(f"Invalid grantee type: {kind}", ArgumentName="Grantee",
                          ArgumentValue=kind)


def acl_from_headers(headers: Mapping[str, str], owner_canonical: str,
                     bucket_owner_canonical: str | None = None, *,
                     known_canonical: Callable[[str], bool] | None = None) -> Acl | None:
    """The ACL a PUT/POST asks for through ``x-amz-acl`` or ``x-amz-grant-*`` headers.

    *headers* has lower-case names. None when the request names no ACL (the caller then
    applies ``private``). Canned and grant headers together are ``InvalidRequest``; a grant
    by e-mail is ``UnresolvableGrantByEmailAddress``; an unknown group or canonical id
    (*known_canonical* says which exist) is ``InvalidArgument``. With grant headers the ACL
    holds exactly the grants named (the owner keeps full control regardless).
    """
    canned = headers.get("x-amz-acl")
    granted = [(name, headers[name]) for name in GRANT_HEADERS if headers.get(name) is not None]
    if canned is not None and granted:
        raise InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if canned is not None:
        return canned_acl(canned.strip(), owner_canonical, bucket_owner_canonical)
    if not granted:
        return None
    grants: list[Grant] = []
    for header, value in granted:
        for kind, grantee in _parse_grantees(header, value):
            grantee_type, resolved = _resolve_grantee(kind, grantee, known_canonical)
            grant = Grant(grantee_type, resolved, GRANT_HEADERS[header])
            if grant not in grants:
                grants.append(grant)
    return Acl(owner_canonical, grants)


# --- ACL XML --------------------------------------------------------------------------

def _xsi_type(element: ET.Element) -> str | None:
    for name, value in element.attrib.items():
        if name == "type" or name.endswith("}type"):
            return value.split(":")[-1]
    return None


def _grant_from_xml(element: ET.Element,
                    known_canonical: Callable[[str], bool] | None) -> Grant:
    grantee = element.find("Grantee")
    permission = (child_text(element, "Permission") or "").strip()
    if grantee is None or permission not in PERMISSIONS:
        raise MalformedACLError()
    declared = _xsi_type(grantee)
    present = {"CanonicalUser": "ID", "Group": "URI", "AmazonCustomerByEmail": "EmailAddress"}
    kinds = [kind for kind, tag in present.items() if grantee.find(tag) is not None]
    grantee_kind = declared or (kinds[0] if len(kinds) == 1 else None)
    if grantee_kind not in present or grantee.find(present[grantee_kind]) is None:
        raise MalformedACLError()
    value = (child_text(grantee, present[grantee_kind]) or "").strip()
    kind = {"CanonicalUser": "id", "Group": "uri", "AmazonCustomerByEmail": "emailaddress"}
    grantee_type, resolved = _resolve_grantee(kind[grantee_kind], value, known_canonical)
    return Grant(grantee_type, resolved, permission)


def acl_from_xml(body: bytes, expected_owner_canonical: str,
                 known_canonical: Callable[[str], bool] | None = None) -> Acl:
    """The ACL in a PutBucketAcl/PutObjectAcl ``AccessControlPolicy`` body.

    Not XML, not an AccessControlPolicy, a grant without grantee or with an invalid
    permission: ``MalformedACLError``. An Owner ID other than the resource owner:
    ``AccessDenied``. E-mail grantees: ``UnresolvableGrantByEmailAddress``; unknown groups or
    canonical ids (*known_canonical*): ``InvalidArgument``. A missing Owner means the
    resource owner.
    """
    try:
        root = parse(body, "AccessControlPolicy")
    except MalformedXML:
        raise MalformedACLError()
    owner = root.find("Owner")
    owner_id = expected_owner_canonical
    if owner is not None:
        owner_id = (child_text(owner, "ID") or "").strip()
        if not owner_id:
            raise MalformedACLError()
        if owner_id != expected_owner_canonical:
            raise AccessDenied()
    acl_list = root.find("AccessControlList")
    if acl_list is None:
        raise MalformedACLError()
    elements = acl_list.findall("Grant")
    if len(elements) > MAX_GRANTS or len(elements) != len(list(acl_list)):
        raise MalformedACLError()
    return Acl(owner_id, [_grant_from_xml(element, known_canonical) for element in elements])


def _grantee_xml(grant: Grant, display_name: Callable[[str], str | None]) -> ET.Element:
    grantee = ET.Element("Grantee", {"xmlns:xsi": XSI_NAMESPACE,
                                     "xsi:type": grant.grantee_type})
    if grant.grantee_type == GROUP:
        ET.SubElement(grantee, "URI").text = grant.grantee
    else:
        ET.SubElement(grantee, "ID").text = grant.grantee
        name = display_name(grant.grantee)
        if name is not None:
            ET.SubElement(grantee, "DisplayName").text = name
    return grantee


def acl_to_xml(acl: Acl, display_name: Callable[[str], str | None]) -> bytes:
    """The ``AccessControlPolicy`` document GetBucketAcl/GetObjectAcl return.

    *display_name* maps a canonical id to the account name (None leaves DisplayName out).
    """
    root = ET.Element("AccessControlPolicy", xmlns=S3_NAMESPACE)
    owner = ET.SubElement(root, "Owner")
    ET.SubElement(owner, "ID").text = acl.owner
    name = display_name(acl.owner)
    if name is not None:
        ET.SubElement(owner, "DisplayName").text = name
    grants = ET.SubElement(root, "AccessControlList")
    for grant in acl.grants:
        element = ET.SubElement(grants, "Grant")
        element.append(_grantee_xml(grant, display_name))
        ET.SubElement(element, "Permission").text = grant.permission
    return document(root)


# --- ACL evaluation -------------------------------------------------------------------

def _grantee_matches(grant: Grant, requester: Principal | None) -> bool:
    if grant.grantee_type == GROUP:
        if grant.grantee == ALL_USERS:
            return True
        if grant.grantee == AUTHENTICATED_USERS:
            return requester is not None
        return False  # LogDelivery: no eucalite requester is the log delivery service
    return requester is not None and canonical_id(requester.account_id) == grant.grantee


def acl_allows(acl: Acl, requester: Principal | None, permission: str) -> bool:
    """Does *acl* give *requester* (None: anonymous) *permission*?

    The owner always has FULL_CONTROL; FULL_CONTROL implies every permission; AllUsers is
    anyone, signed or not; AuthenticatedUsers is any signed requester.
    """
    if requester is not None and canonical_id(requester.account_id) == acl.owner:
        return True
    return any(grant.permission in (permission, FULL_CONTROL)
               and _grantee_matches(grant, requester) for grant in acl.grants)


# --- bucket policies: model -----------------------------------------------------------

#: S3 caps a bucket policy at 20 KB (measured on the document without whitespace).
MAX_POLICY_SIZE = 20 * 1024
POLICY_VERSIONS = ("2008-10-17", "2012-10-17")
S3_ARN_PREFIX = "arn:aws:s3:::"

ALLOW, DENY = "Allow", "Deny"


@dataclass(frozen=True)
class Condition:
    """One key test of a statement's Condition block, e.g. ``StringLike s3:prefix [...]``."""

    operator: str                 # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str                     # "StringLike"
    qualifier: str | None         # "ForAnyValue" | "ForAllValues" | None
    if_exists: bool
    key: str                      # lower-case
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    """A validated statement. Principals are tuples such as ``("*",)``,
    ``("account", "123456789012")``, ``("user", "123456789012", "alice")``,
    ``("canonical", hex)`` or ``("service", name)``; exactly one of each Action/NotAction,
    Resource/NotResource and Principal/NotPrincipal pair is set."""

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
    """A parsed bucket policy (see :func:`parse_policy`)."""

    version: str
    id: str | None
    statements: tuple[Statement, ...]

    @property
    def uses_variables(self) -> bool:
        """Policy variables (``${aws:username}``) are substituted only in version 2012."""
        return self.version == "2012-10-17"


# --- bucket policies: parsing ---------------------------------------------------------

_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction",
                     "Resource", "NotResource", "Condition"}
_ACTION = re.compile(r"^s3:[A-Za-z0-9*?]+\Z", re.IGNORECASE)
_ACCOUNT_ID = re.compile(r"^[0-9]{12}\Z")
_ROOT_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):root\Z")
_USER_ARN = re.compile(r"^arn:aws:iam::([0-9]{12}):user/((?:[A-Za-z0-9_+=,.@-]+/)*)"
                       r"([A-Za-z0-9_+=,.@-]{1,64})\Z")
_CONDITION_KEY = re.compile(r"^(aws|s3):\S+\Z", re.IGNORECASE)

#: Actions on objects (Resource arn:aws:s3:::bucket/key), lower-case.
OBJECT_ACTIONS = frozenset(f"s3:{name}".lower() for name in (
    "AbortMultipartUpload", "BypassGovernanceRetention", "DeleteObject", "DeleteObjectTagging",
    "DeleteObjectVersion", "DeleteObjectVersionTagging", "GetObject", "GetObjectAcl",
    "GetObjectAttributes", "GetObjectLegalHold", "GetObjectRetention", "GetObjectTagging",
    "GetObjectTorrent", "GetObjectVersion", "GetObjectVersionAcl",
    "GetObjectVersionAttributes", "GetObjectVersionForReplication",
    "GetObjectVersionTagging", "GetObjectVersionTorrent", "InitiateReplication",
    "ListMultipartUploadParts", "ObjectOwnerOverrideToBucketOwner", "PutObject",
    "PutObjectAcl", "PutObjectLegalHold", "PutObjectRetention", "PutObjectTagging",
    "PutObjectVersionAcl", "PutObjectVersionTagging", "ReplicateDelete", "ReplicateObject",
    "ReplicateTags", "RestoreObject"))

#: Actions on buckets (Resource arn:aws:s3:::bucket), lower-case.
BUCKET_ACTIONS = frozenset(f"s3:{name}".lower() for name in (
    "DeleteBucket", "DeleteBucketPolicy", "DeleteBucketWebsite", "GetAccelerateConfiguration",
    "GetAnalyticsConfiguration", "GetBucketAcl", "GetBucketCORS", "GetBucketLocation",
    "GetBucketLogging", "GetBucketNotification", "GetBucketObjectLockConfiguration",
    "GetBucketOwnershipControls", "GetBucketPolicy", "GetBucketPolicyStatus",
    "GetBucketPublicAccessBlock", "GetBucketRequestPayment", "GetBucketTagging",
    "GetBucketVersioning", "GetBucketWebsite", "GetEncryptionConfiguration",
    "GetIntelligentTieringConfiguration", "GetInventoryConfiguration",
    "GetLifecycleConfiguration", "GetMetricsConfiguration", "GetReplicationConfiguration",
    "ListBucket", "ListBucketMultipartUploads", "ListBucketVersions",
    "PutAccelerateConfiguration", "PutAnalyticsConfiguration", "PutBucketAcl",
    "PutBucketCORS", "PutBucketLogging", "PutBucketNotification",
    "PutBucketObjectLockConfiguration", "PutBucketOwnershipControls", "PutBucketPolicy",
    "PutBucketPublicAccessBlock", "PutBucketRequestPayment", "PutBucketTagging",
    "PutBucketVersioning", "PutBucketWebsite", "PutEncryptionConfiguration",
    "PutIntelligentTieringConfiguration", "PutInventoryConfiguration",
    "PutLifecycleConfiguration", "PutMetricsConfiguration", "PutReplicationConfiguration"))

#: Policy actions only the account that owns the bucket may use, and whose admin user
#: (the account's root) keeps even when the policy denies them: no owner locks itself out.
POLICY_ACTIONS = frozenset({"s3:getbucketpolicy", "s3:putbucketpolicy",
                            "s3:deletebucketpolicy"})


def _malformed(message: str) -> MalformedPolicy:
    return MalformedPolicy(message)


def _string_list(value: Any, message: str) -> tuple[str, ...]:
    """A JSON string or non-empty list of strings, else MalformedPolicy(*message*)."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise _malformed(message)


def _parse_aws_principal(value: str,
                         principal_exists: Callable[[str], bool] | None) -> tuple[str, ...]:
    if value == "*":
        return ("*",)
    arn = None
    if _ACCOUNT_ID.match(value):
        principal, arn = ("account", value), f"arn:aws:iam::{value}:root"
    elif (match := _ROOT_ARN.match(value)):
        principal, arn = ("account", match.group(1)), value
    elif (match := _USER_ARN.match(value)):
        principal, arn = ("user", match.group(1), match.group(3)), value
    else:
        raise _malformed("Invalid principal in policy")
    if principal_exists is not None and not principal_exists(arn):
        raise _malformed("Invalid principal in policy")
    return principal


def _parse_principal(value: Any, principal_exists: Callable[[str], bool] | None
                     ) -> tuple[tuple[str, ...], ...]:
    """``"*"`` or ``{"AWS": ..., "CanonicalUser": ..., "Service": ...}``."""
    invalid = "Invalid principal in policy"
    if value == "*":
        return (("*",),)
    if not isinstance(value, dict) or not value:
        raise _malformed(invalid)
    principals: list[tuple[str, ...]] = []
    for kind, entries in value.items():
        for entry in _string_list(entries, invalid):
            entry = entry.strip()
            if kind == "AWS":
                principals.append(_parse_aws_principal(entry, principal_exists))
            elif kind == "CanonicalUser" and _CANONICAL_ID.match(entry):
                if principal_exists is not None and not principal_exists(entry):
                    raise _malformed(invalid)
                principals.append(("canonical", entry))
            elif kind == "Service" and entry:
                principals.append(("service", entry))
            else:
                raise _malformed(invalid)
    return tuple(principals)


def _parse_actions(value: Any) -> tuple[str, ...]:
    actions = _string_list(value, "Policy has invalid action")
    for action in actions:
        if action != "*" and not _ACTION.match(action):
            raise _malformed("Policy has invalid action")
    return actions


def _names_bucket(pattern: str, bucket: str) -> bool:
    """Can resource *pattern* match the bucket or an object in it?"""
    rest = pattern[len(S3_ARN_PREFIX):]
    head = rest.split("/", 1)[0]
    if "/" in rest:
        return _wildcard(head, False).matches(bucket)
    return _wildcard(rest, False).matches(bucket)


def _parse_resources(value: Any, bucket: str) -> tuple[str, ...]:
    resources = _string_list(value, "Policy has invalid resource")
    for resource in resources:
        if not resource.startswith(S3_ARN_PREFIX) or not _names_bucket(resource, bucket):
            raise _malformed("Policy has invalid resource")
    return resources


def _check_action_resource_types(actions: tuple[str, ...], resources: tuple[str, ...],
                                 bucket: str) -> None:
    """S3 refuses a statement naming an action that applies to none of its resources."""
    rests = [resource[len(S3_ARN_PREFIX):] for resource in resources]
    has_object = any("/" in rest or "*" in rest for rest in rests)
    has_bucket = any(_wildcard(rest, False).matches(bucket) for rest in rests)
    for action in actions:
        name = action.lower()
        if (name in OBJECT_ACTIONS and not has_object) or \
                (name in BUCKET_ACTIONS and not has_bucket):
            raise _malformed("Action does not apply to any resource(s) in statement")


def _parse_statement(raw: Any, bucket: str,
                     principal_exists: Callable[[str], bool] | None) -> Statement:
    if not isinstance(raw, dict):
        raise _malformed("This policy contains invalid Json")
    for name in raw:
        if name not in _STATEMENT_FIELDS:
            raise _malformed(f"Unknown field {name}")
    for first, second in (("Principal", "NotPrincipal"), ("Action", "NotAction"),
                          ("Resource", "NotResource")):
        if first in raw and second in raw:
            raise _malformed(f"Statement cannot contain both {first} and {second}")
        if first not in raw and second not in raw:
            raise _malformed(f"Missing required field {first}")
    if "Effect" not in raw:
        raise _malformed("Missing required field Effect")
    effect = raw["Effect"]
    if effect not in (ALLOW, DENY):
        raise _malformed(f"Invalid effect: {effect}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise _malformed("Statement Sid must be a string")

    def optional(name: str, parser: Callable[..., Any], *args: Any) -> Any:
        return parser(raw[name], *args) if name in raw else None

    statement = Statement(
        sid=sid, effect=effect,
        principals=optional("Principal", _parse_principal, principal_exists),
        not_principals=optional("NotPrincipal", _parse_principal, principal_exists),
        actions=optional("Action", _parse_actions),
        not_actions=optional("NotAction", _parse_actions),
        resources=optional("Resource", _parse_resources, bucket),
        not_resources=optional("NotResource", _parse_resources, bucket),
        conditions=_parse_conditions(raw.get("Condition", {})))
    if statement.actions and statement.resources:
        _check_action_resource_types(statement.actions, statement.resources, bucket)
    return statement


def _load_json(text: str | bytes) -> dict[str, Any]:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed("This policy contains invalid Json")
    if len(text) > 16 * MAX_POLICY_SIZE:
        raise _malformed("Policies must be less than 20 KB")
    if not text.lstrip().startswith("{"):
        raise _malformed("Policies must be valid JSON and the first byte must be '{'")
    try:
        data = json.loads(text)
    except ValueError:
        raise _malformed("This policy contains invalid Json")
    if not isinstance(data, dict):  # pragma: no cover - '{' checked above
        raise _malformed("This policy contains invalid Json")
    try:
        minified = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:      # a lone surrogate escape ("\ud800"): no text at all
        raise _malformed("This policy contains invalid Json")
    if len(minified) > MAX_POLICY_SIZE:
        raise _malformed("Policies must be less than 20 KB")
    return data


def parse_policy(text: str | bytes, bucket: str, *,
                 principal_exists: Callable[[str], bool] | None = None) -> Policy:
    """Validate a PutBucketPolicy document for *bucket*; ``MalformedPolicy`` when invalid.

    Checks what S3 checks: JSON object under 20 KB, Version (default 2008-10-17), a non-empty
    Statement (list or single object) of statements with Effect, Principal/NotPrincipal,
    Action/NotAction (``s3:`` names, ``*``/``?`` wildcards), Resource/NotResource naming this
    bucket or its objects, actions applicable to those resources, unique Sids, and known
    condition operators with well-formed values. *principal_exists*, given an account
    principal's root ARN, a user ARN or a canonical id, says whether it exists (S3 refuses
    principals it cannot resolve); without it any well-formed principal is accepted.
    """
    data = _load_json(text)
    for name in data:
        if name not in ("Version", "Id", "Statement"):
            raise _malformed(f"Unknown field {name}")
    version = data.get("Version", "2008-10-17")
    if version not in POLICY_VERSIONS:
        raise _malformed("The policy must contain a valid version string")
    policy_id = data.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise _malformed("Policy Id must be a string")
    if "Statement" not in data:
        raise _malformed("Missing required field Statement")
    raw = data["Statement"]
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise _malformed("Could not parse the policy: Statement is empty!")
    statements = tuple(_parse_statement(item, bucket, principal_exists)
                       for item in raw_statements)
    sids = [statement.sid for statement in statements if statement.sid]
    if len(sids) != len(set(sids)):
        raise _malformed("Statement IDs (SID) in a single policy must be unique")
    return Policy(version=version, id=policy_id, statements=statements)


# --- conditions: operators ------------------------------------------------------------

#: negated operator -> the positive operator it negates.
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_POSITIVE = ("StringEquals", "StringEqualsIgnoreCase", "StringLike",
             "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
             "NumericGreaterThanEquals", "DateEquals", "DateLessThan", "DateLessThanEquals",
             "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
             "ArnEquals", "ArnLike")
OPERATORS = frozenset((*_POSITIVE, *_NEGATIONS, "Null"))
_OPERATOR_NAMES = {name.lower(): name for name in OPERATORS}
_QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier = None
    name = operator
    if ":" in name:
        prefix, name = name.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise _malformed(f"Invalid Condition type : {operator}")
    if_exists = name.lower().endswith("ifexists")
    if if_exists:
        name = name[:-len("IfExists")]
    base = _OPERATOR_NAMES.get(name.lower())
    if base is None or (base == "Null" and (if_exists or qualifier)):
        raise _malformed(f"Invalid Condition type : {operator}")
    return qualifier, base, if_exists


def _condition_value(value: Any, operator: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise _malformed(f"Invalid value for condition {operator}")


def _check_condition_values(base: str, values: tuple[str, ...]) -> None:
    family = _NEGATIONS.get(base, base)
    try:
        for value in values:
            if family.startswith("Numeric"):
                float(value)
            elif family.startswith("Date"):
                _parse_date(value)
            elif family == "IpAddress":
                ipaddress.ip_network(value.strip(), strict=False)
            elif family == "Null" and value.lower() not in ("true", "false"):
                raise ValueError(value)
    except ValueError:
        if family == "IpAddress":
            raise _malformed("Invalid IP address in Conditions")
        raise _malformed(f"Invalid value {values!r} for condition {base}")


def _parse_conditions(raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise _malformed("This policy contains invalid Json")
    conditions: list[Condition] = []
    for operator, tests in raw.items():
        qualifier, base, if_exists = _split_operator(operator)
        if not isinstance(tests, dict):
            raise _malformed("This policy contains invalid Json")
        for key, value in tests.items():
            if not _CONDITION_KEY.match(key):
                raise _malformed("Policy has an invalid condition key")
            items = value if isinstance(value, list) else [value]
            values = tuple(_condition_value(item, operator) for item in items)
            _check_condition_values(base, values)
            conditions.append(Condition(operator, base, qualifier, if_exists, key.lower(),
                                        values))
    return tuple(conditions)


# --- matching helpers -----------------------------------------------------------------

def _wildcard(pattern: str, ignore_case: bool) -> glob.Pattern:
    """``*`` (any run) and ``?`` (one character) glob, matched without backtracking (a
    regular expression took seconds to hours on ``*a*a*a*b`` against a long key)."""
    return glob.compile(pattern, escapes=False, ignore_case=ignore_case)


def _tokens(text: str, wildcards: bool) -> list:
    return glob.parse(text, escapes=False) if wildcards else list(text)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


def _variable(name: str, context: Mapping[str, list[str]]) -> str | None:
    """The value of ``${name}`` (``${key, 'default'}`` allowed), None when unresolvable."""
    name = name.strip()
    if name in _LITERAL_VARIABLES:
        return _LITERAL_VARIABLES[name]
    default = None
    if "," in name:
        name, fallback = (part.strip() for part in name.split(",", 1))
        if len(fallback) >= 2 and fallback[0] == fallback[-1] == "'":
            default = fallback[1:-1]
    values = context.get(name.lower())
    if values is None or len(values) != 1:
        return default
    return values[0]


def _pattern(text: str, context: Mapping[str, list[str]], variables: bool, wildcards: bool,
             ignore_case: bool = False) -> glob.Pattern | None:
    """*text* as a glob: ``*``/``?`` wildcards when *wildcards*, ``${...}`` policy variables
    (substituted literally) when *variables*; None when a variable cannot be resolved."""
    if not (variables and "${" in text):
        return glob.Pattern.from_tokens(_tokens(text, wildcards), ignore_case)
    tokens: list = []
    position = 0
    for match in _VARIABLE.finditer(text):
        tokens += _tokens(text[position:match.start()], wildcards)
        value = _variable(match.group(1), context)
        if value is None:
            return None
        tokens += list(value)
        position = match.end()
    tokens += _tokens(text[position:], wildcards)
    return glob.Pattern.from_tokens(tokens, ignore_case)


def _matches(text: str, value: str, context: Mapping[str, list[str]], *, variables: bool,
             wildcards: bool, ignore_case: bool = False) -> bool:
    pattern = _pattern(text, context, variables, wildcards, ignore_case)
    return pattern is not None and pattern.matches(value)


def _parse_date(text: str) -> dt.datetime:
    """ISO 8601 (``Z`` or offset; naive means UTC) or epoch seconds -> aware datetime."""
    value = text.strip()
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        except (OverflowError, OSError):        # beyond what a datetime holds
            raise ValueError(f"not a date: {value}") from None
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _compare(base: str, request: str, policy: str, context: Mapping[str, list[str]],
             variables: bool) -> bool:
    """Does one request value satisfy positive operator *base* against one policy value?"""
    if base in ("StringEquals", "StringEqualsIgnoreCase"):
        return _matches(policy, request, context, variables=variables, wildcards=False,
                        ignore_case=base == "StringEqualsIgnoreCase")
    if base in ("StringLike", "ArnLike", "ArnEquals"):
        return _matches(policy, request, context, variables=variables, wildcards=True)
    if base == "Bool":
        return request.strip().lower() == policy.strip().lower()
    if base == "BinaryEquals":
        return request == policy
    try:
        if base == "IpAddress":
            network = ipaddress.ip_network(policy.strip(), strict=False)
            return ipaddress.ip_address(request.strip()) in network
        if base.startswith("Numeric"):
            return _ORDER[base[len("Numeric"):]](float(request), float(policy))
        if base.startswith("Date"):
            return _ORDER[base[len("Date"):]](_parse_date(request), _parse_date(policy))
    except (ValueError, TypeError, OverflowError):
        return False
    raise AssertionError(base)  # pragma: no cover - every operator is handled above


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _normalize_context(context: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Lower-case keys; every value a list of strings (booleans as ``true``/``false``)."""
    normalized: dict[str, list[str]] = {}
    for key, value in (context or {}).items():
        if value is None:
            continue
        items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        normalized[key.lower()] = [_context_text(item) for item in items]
    return normalized


def _context_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def condition_holds(condition: Condition, context: Mapping[str, list[str]],
                    variables: bool = True) -> bool:
    """Evaluate one condition against a normalized context (see :func:`evaluate`).

    Several policy values are ORed (NORed for negated operators). A missing key fails
    positive operators and satisfies negated ones, ``...IfExists`` and ``ForAllValues``;
    ``Null`` tests presence itself.
    """
    present = context.get(condition.key)
    if condition.base == "Null":
        absent = not present
        return any((value.lower() == "true") == absent for value in condition.values)
    negated = condition.base in _NEGATIONS
    positive = _NEGATIONS.get(condition.base, condition.base)
    if not present:
        if condition.if_exists or condition.qualifier == "ForAllValues":
            return True
        return negated and condition.qualifier is None

    def holds(value: str) -> bool:
        matched = any(_compare(positive, value, policy_value, context, variables)
                      for policy_value in condition.values)
        return matched != negated

    if condition.qualifier == "ForAllValues":
        return all(holds(value) for value in present)
    if condition.qualifier == "ForAnyValue":
        return any(holds(value) for value in present)
    return all(map(holds, present)) if negated else any(map(holds, present))


# --- bucket policies: evaluation ------------------------------------------------------

def _principal_matches(principal: tuple[str, ...], requester: Principal | None) -> bool:
    kind = principal[0]
    if kind == "*":
        return True
    if requester is None:
        return False
    if kind == "account":
        return requester.account_id == principal[1]
    if kind == "user":
        return requester.account_id == principal[1] and requester.user_name == principal[2]
    if kind == "canonical":
        return canonical_id(requester.account_id) == principal[1]
    return False  # service principals: no eucalite requester is an AWS service


def _statement_applies(statement: Statement, requester: Principal | None, action: str,
                       resource: str, context: Mapping[str, list[str]],
                       variables: bool) -> bool:
    if statement.principals is not None:
        if not any(_principal_matches(p, requester) for p in statement.principals):
            return False
    elif any(_principal_matches(p, requester) for p in statement.not_principals or ()):
        return False

    def action_in(patterns: Iterable[str]) -> bool:
        return any(_wildcard(p, True).matches(action) for p in patterns)

    if statement.actions is not None and not action_in(statement.actions):
        return False
    if statement.not_actions is not None and action_in(statement.not_actions):
        return False

    def resource_in(patterns: Iterable[str]) -> bool:
        return any(_matches(p, resource, context, variables=variables, wildcards=True)
                   for p in patterns)

    if statement.resources is not None and not resource_in(statement.resources):
        return False
    if statement.not_resources is not None and resource_in(statement.not_resources):
        return False
    return all(condition_holds(c, context, variables) for c in statement.conditions)


def evaluate(policy: Policy, requester: Principal | None, action: str, resource: str,
             context: Mapping[str, Any] | None = None) -> str | None:
    """``"Deny"`` if any applicable statement denies, else ``"Allow"`` if one allows, else
    None (the policy says nothing about this request).

    *action* is an IAM action (``s3:GetObject``; matched case-insensitively), *resource* an
    ARN (``arn:aws:s3:::bucket`` or ``arn:aws:s3:::bucket/key``). *context* holds condition
    keys (looked up case-insensitively) mapped to a string, a boolean or a list of strings.
    Principals: ``*`` matches anyone, anonymous included; an account (``123456789012`` or
    ``arn:aws:iam::123456789012:root``) any of its users; a user ARN that user.
    """
    normalized = _normalize_context(context)
    allowed = False
    for statement in policy.statements:
        if _statement_applies(statement, requester, action, resource, normalized,
                              policy.uses_variables):
            if statement.effect == DENY:
                return DENY
            allowed = True
    return ALLOW if allowed else None


# --- the decision ---------------------------------------------------------------------

def decide(requester: Principal | None, *, is_owner: bool, acl: Acl | None,
           permission: str | None, policy: Policy | None, action: str, resource: str,
           context: Mapping[str, Any] | None = None) -> bool:
    """May *requester* perform *action* on *resource*?

    In order: an explicit policy Deny refuses (except that the owning account's admin user
    keeps Get/Put/DeleteBucketPolicy, so an owner cannot lock itself out); the owner
    (*is_owner*, the requester's account owns the bucket or object) may; a policy Allow
    grants; an ACL grant of *permission* (None: the action has no ACL permission) grants;
    anything else is refused.
    """
    verdict = None
    if policy is not None:
        verdict = evaluate(policy, requester, action, resource, context)
    if verdict == DENY:
        return bool(is_owner and requester is not None and requester.user_name == ADMIN_USER
                    and action.lower() in POLICY_ACTIONS)
    if is_owner or verdict == ALLOW:
        return True
    return bool(acl is not None and permission and acl_allows(acl, requester, permission))
