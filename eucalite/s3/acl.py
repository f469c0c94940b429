"""S3 access control lists, pure: canonical ids, grants, canned ACLs, the ``x-amz-acl`` /
``x-amz-grant-*`` headers, the ``AccessControlPolicy`` XML document, and whether an ACL
grants a permission. Nothing here touches HTTP or the database; the adapter feeds it stored
JSON, request headers and bodies, and lookup functions.

* :func:`canonical_id` - the 64-hex canonical user id S3 shows for an account.
* :class:`Grant` and :class:`Acl` (``to_json``/``from_json`` for a JSON column),
  :func:`canned_acl`, :func:`acl_from_headers`, :func:`acl_from_xml` / :func:`acl_to_xml`
  and :func:`acl_allows`.

Bucket policies are :mod:`eucalite.s3.policy`; the decision that combines both is
:func:`eucalite.s3.policy.decide`.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from xml.etree import ElementTree as ET

from ..accounts import Principal
from ..errors.s3 import (AccessDenied, InvalidArgument, InvalidRequest, MalformedACLError,
                         MalformedXML, UnresolvableGrantByEmailAddress)
from ..xmlutil import S3_NAMESPACE, document
from .xmlbody import child_text, parse

# --- canonical ids --------------------------------------------------------------------

_CANONICAL_PREFIX = b"eucalite-s3-canonical-user:"
_CANONICAL_ID = re.compile(r"^[0-9a-f]{64}\Z")


def is_canonical_id(text: str) -> bool:
    """Is *text* shaped like a canonical user id (64 lower-case hex digits)?"""
    return bool(_CANONICAL_ID.match(text))


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
        if not is_canonical_id(value) or (known_canonical is not None
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

