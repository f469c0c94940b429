"""Unit tests for eucalite.s3.acl, .policy and .conditions: canonical ids, ACLs, bucket
policies, the decision."""
from __future__ import annotations

import json
from xml.etree import ElementTree as ET

import pytest

from eucalite.accounts import Principal
from eucalite.errors import AwsError
from eucalite.s3.acl import (ALL_USERS, AUTHENTICATED_USERS, LOG_DELIVERY, PERMISSIONS, Acl,
                             Grant, acl_allows, acl_from_headers, acl_from_xml, acl_to_xml,
                             canned_acl, canonical_id, requester_canonical)
from eucalite.s3.policy import MAX_POLICY_SIZE, decide, evaluate, parse_policy
from eucalite.xmlutil import S3_NAMESPACE

ACCOUNT_A, ACCOUNT_B, ACCOUNT_C = "111111111111", "222222222222", "333333333333"
OWNER = canonical_id(ACCOUNT_A)
OTHER = canonical_id(ACCOUNT_B)
BUCKET = "photos"
BUCKET_ARN = f"arn:aws:s3:::{BUCKET}"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def principal(account_id: str = ACCOUNT_A, user: str = "admin",
              account_name: str = "alpha") -> Principal:
    return Principal(account_id=account_id, account_name=account_name, user_id=f"AIDA{user}",
                     user_name=user, access_key_id="AKIAEXAMPLE")


ALICE_A = principal(ACCOUNT_A, "alice")
ADMIN_A = principal(ACCOUNT_A, "admin")
ALICE_B = principal(ACCOUNT_B, "alice", "beta")
BOB_B = principal(ACCOUNT_B, "bob", "beta")
CAROL_C = principal(ACCOUNT_C, "carol", "gamma")


def raises(code: str, status: int, func, *args, **kwargs) -> AwsError:
    with pytest.raises(AwsError) as info:
        func(*args, **kwargs)
    assert info.value.code == code, info.value.message
    assert info.value.status == status
    return info.value


# --- canonical ids --------------------------------------------------------------------

def test_canonical_id_is_stable_64_hex_and_distinct():
    assert canonical_id(ACCOUNT_A) == canonical_id(ACCOUNT_A)
    assert len(OWNER) == 64 and int(OWNER, 16) >= 0 and OWNER == OWNER.lower()
    assert OWNER != OTHER
    assert requester_canonical(ALICE_A) == OWNER
    assert requester_canonical(None) is None


# --- ACL model ------------------------------------------------------------------------

def test_acl_json_round_trip_survives_json_text():
    acl = Acl(OWNER, [Grant("CanonicalUser", OWNER, "FULL_CONTROL"),
                      Grant("Group", ALL_USERS, "READ")])
    stored = json.dumps(acl.to_json())
    assert Acl.from_json(json.loads(stored)) == acl
    assert acl.to_json()["grants"][1] == {"type": "Group", "grantee": ALL_USERS,
                                          "permission": "READ"}


def test_acl_from_json_rejects_garbage():
    with pytest.raises(ValueError):
        Acl.from_json({"owner": OWNER, "grants": [{"type": "Group", "grantee": ALL_USERS,
                                                    "permission": "EVERYTHING"}]})


def test_acl_positional_construction_defaults_to_no_grants():
    assert Acl(OWNER).grants == [] and Acl(OWNER, []).owner == OWNER


# --- canned ACLs ----------------------------------------------------------------------

OWNER_FULL = Grant("CanonicalUser", OWNER, "FULL_CONTROL")


@pytest.mark.parametrize("name, extra", [
    ("private", []),
    ("public-read", [Grant("Group", ALL_USERS, "READ")]),
    ("public-read-write", [Grant("Group", ALL_USERS, "READ"),
                           Grant("Group", ALL_USERS, "WRITE")]),
    ("authenticated-read", [Grant("Group", AUTHENTICATED_USERS, "READ")]),
    ("log-delivery-write", [Grant("Group", LOG_DELIVERY, "WRITE"),
                            Grant("Group", LOG_DELIVERY, "READ_ACP")]),
    ("aws-exec-read", []),
])
def test_canned_acls(name, extra):
    acl = canned_acl(name, OWNER)
    assert acl.owner == OWNER
    assert acl.grants == [OWNER_FULL, *extra]


def test_bucket_owner_canned_acls_grant_the_bucket_owner():
    assert canned_acl("bucket-owner-read", OWNER, OTHER).grants == [
        OWNER_FULL, Grant("CanonicalUser", OTHER, "READ")]
    assert canned_acl("bucket-owner-full-control", OWNER, OTHER).grants == [
        OWNER_FULL, Grant("CanonicalUser", OTHER, "FULL_CONTROL")]


def test_bucket_owner_canned_acls_without_another_owner_are_private():
    for name in ("bucket-owner-read", "bucket-owner-full-control"):
        assert canned_acl(name, OWNER).grants == [OWNER_FULL]
        assert canned_acl(name, OWNER, OWNER).grants == [OWNER_FULL]


def test_unknown_canned_acl_is_invalid_argument():
    error = raises("InvalidArgument", 400, canned_acl, "public", OWNER)
    assert error.extra["ArgumentName"] == "x-amz-acl"


# --- ACL from headers -----------------------------------------------------------------

def test_no_acl_headers_is_none():
    assert acl_from_headers({"content-type": "text/plain"}, OWNER) is None


def test_canned_header():
    acl = acl_from_headers({"x-amz-acl": "public-read"}, OWNER)
    assert acl == canned_acl("public-read", OWNER)
    acl = acl_from_headers({"x-amz-acl": "bucket-owner-full-control"}, OWNER, OTHER)
    assert Grant("CanonicalUser", OTHER, "FULL_CONTROL") in acl.grants


def test_bad_canned_header():
    raises("InvalidArgument", 400, acl_from_headers, {"x-amz-acl": "nope"}, OWNER)


def test_canned_and_grant_headers_together_are_invalid_request():
    error = raises("InvalidRequest", 400, acl_from_headers,
                   {"x-amz-acl": "private", "x-amz-grant-read": f'id="{OTHER}"'}, OWNER)
    assert error.message == "Specifying both Canned ACLs and Header Grants is not allowed"


def test_grant_headers():
    headers = {
        "x-amz-grant-read": f'uri="{ALL_USERS}", id="{OTHER}"',
        "x-amz-grant-write-acp": f"id={OTHER}",
        "x-amz-grant-full-control": f'id="{OWNER}"',
        "x-amz-grant-read-acp": f'uri="{AUTHENTICATED_USERS}"',
        "x-amz-grant-write": f'uri="{LOG_DELIVERY}"',
    }
    acl = acl_from_headers(headers, OWNER)
    assert acl.owner == OWNER
    assert acl.grants == [
        Grant("CanonicalUser", OWNER, "FULL_CONTROL"),
        Grant("Group", ALL_USERS, "READ"),
        Grant("CanonicalUser", OTHER, "READ"),
        Grant("Group", LOG_DELIVERY, "WRITE"),
        Grant("Group", AUTHENTICATED_USERS, "READ_ACP"),
        Grant("CanonicalUser", OTHER, "WRITE_ACP"),
    ]


def test_grant_headers_deduplicate():
    acl = acl_from_headers({"x-amz-grant-read": f'id="{OTHER}", id="{OTHER}"'}, OWNER)
    assert acl.grants == [Grant("CanonicalUser", OTHER, "READ")]


def test_grant_by_email_is_unresolvable():
    raises("UnresolvableGrantByEmailAddress", 400, acl_from_headers,
           {"x-amz-grant-read": 'emailAddress="someone@example.com"'}, OWNER)


@pytest.mark.parametrize("value", [
    'uri="http://acs.amazonaws.com/groups/global/Everyone"',
    'id="not-a-canonical-id"',
    'arn="arn:aws:iam::111111111111:root"',
    'id=',
    'garbage',
    '',
])
def test_bad_grant_headers_are_invalid_argument(value):
    raises("InvalidArgument", 400, acl_from_headers, {"x-amz-grant-read": value}, OWNER)


def test_grant_header_unknown_canonical_id():
    known = {OWNER, OTHER}.__contains__
    raises("InvalidArgument", 400, acl_from_headers,
           {"x-amz-grant-read": f'id="{canonical_id(ACCOUNT_C)}"'}, OWNER,
           known_canonical=known)
    acl = acl_from_headers({"x-amz-grant-read": f'id="{OTHER}"'}, OWNER,
                           known_canonical=known)
    assert acl.grants == [Grant("CanonicalUser", OTHER, "READ")]


# --- ACL XML --------------------------------------------------------------------------

NAMES = {OWNER: "alpha", OTHER: "beta"}


def test_acl_to_xml_shape():
    acl = Acl(OWNER, [OWNER_FULL, Grant("Group", ALL_USERS, "READ"),
                      Grant("CanonicalUser", canonical_id(ACCOUNT_C), "WRITE")])
    body = acl_to_xml(acl, NAMES.get)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert f'xmlns:xsi="{XSI}"'.encode() in body
    assert b'xsi:type="CanonicalUser"' in body and b'xsi:type="Group"' in body
    root = ET.fromstring(body)
    ns = {"s3": S3_NAMESPACE}
    assert root.tag == f"{{{S3_NAMESPACE}}}AccessControlPolicy"
    assert root.findtext("s3:Owner/s3:ID", namespaces=ns) == OWNER
    assert root.findtext("s3:Owner/s3:DisplayName", namespaces=ns) == "alpha"
    grants = root.findall("s3:AccessControlList/s3:Grant", ns)
    assert len(grants) == 3
    first, second, third = grants
    assert first.find("s3:Grantee", ns).get(f"{{{XSI}}}type") == "CanonicalUser"
    assert first.findtext("s3:Grantee/s3:ID", namespaces=ns) == OWNER
    assert first.findtext("s3:Grantee/s3:DisplayName", namespaces=ns) == "alpha"
    assert first.findtext("s3:Permission", namespaces=ns) == "FULL_CONTROL"
    assert second.find("s3:Grantee", ns).get(f"{{{XSI}}}type") == "Group"
    assert second.findtext("s3:Grantee/s3:URI", namespaces=ns) == ALL_USERS
    assert second.find("s3:Grantee/s3:ID", ns) is None
    # No display name known: DisplayName is left out.
    assert third.find("s3:Grantee/s3:DisplayName", ns) is None


def test_acl_xml_round_trip():
    acl = Acl(OWNER, [OWNER_FULL, Grant("Group", ALL_USERS, "READ"),
                      Grant("Group", AUTHENTICATED_USERS, "READ_ACP"),
                      Grant("CanonicalUser", OTHER, "WRITE_ACP"),
                      Grant("Group", LOG_DELIVERY, "WRITE")])
    assert acl_from_xml(acl_to_xml(acl, NAMES.get), OWNER) == acl
    empty = Acl(OWNER, [])
    assert acl_from_xml(acl_to_xml(empty, NAMES.get), OWNER) == empty


def policy_xml(grants: str, owner: str | None = OWNER) -> bytes:
    owner_xml = f"<Owner><ID>{owner}</ID><DisplayName>x</DisplayName></Owner>" \
        if owner is not None else ""
    return (f'<AccessControlPolicy xmlns="{S3_NAMESPACE}" xmlns:xsi="{XSI}">{owner_xml}'
            f"<AccessControlList>{grants}</AccessControlList></AccessControlPolicy>").encode()


def grant_xml(grantee_type: str | None, inner: str, permission: str = "READ") -> str:
    type_attr = f' xsi:type="{grantee_type}"' if grantee_type else ""
    return (f"<Grant><Grantee{type_attr}>{inner}</Grantee>"
            f"<Permission>{permission}</Permission></Grant>")


def test_acl_from_xml_as_boto_sends_it():
    body = policy_xml(grant_xml("CanonicalUser", f"<ID>{OTHER}</ID><DisplayName>b</DisplayName>",
                                "FULL_CONTROL")
                      + grant_xml("Group", f"<URI>{ALL_USERS}</URI>"))
    acl = acl_from_xml(body, OWNER)
    assert acl.grants == [Grant("CanonicalUser", OTHER, "FULL_CONTROL"),
                          Grant("Group", ALL_USERS, "READ")]


def test_acl_from_xml_without_owner_means_resource_owner():
    acl = acl_from_xml(policy_xml(grant_xml("Group", f"<URI>{ALL_USERS}</URI>"), owner=None),
                       OWNER)
    assert acl.owner == OWNER


def test_acl_from_xml_infers_missing_xsi_type():
    acl = acl_from_xml(policy_xml(grant_xml(None, f"<URI>{ALL_USERS}</URI>")), OWNER)
    assert acl.grants == [Grant("Group", ALL_USERS, "READ")]


def test_acl_from_xml_other_owner_is_access_denied():
    raises("AccessDenied", 403, acl_from_xml, policy_xml("", owner=OTHER), OWNER)


@pytest.mark.parametrize("body", [
    b"",
    b"not xml",
    b"<Other/>",
    policy_xml(grant_xml("Group", f"<URI>{ALL_USERS}</URI>", "READ_WRITE")),
    policy_xml(grant_xml("Group", f"<URI>{ALL_USERS}</URI>", "")),
    policy_xml("<Grant><Permission>READ</Permission></Grant>"),
    policy_xml(grant_xml("Group", f"<ID>{OTHER}</ID>")),
    policy_xml(grant_xml("Robot", f"<ID>{OTHER}</ID>")),
    policy_xml(grant_xml(None, "")),
    policy_xml("<Junk/>"),
    policy_xml("", owner=""),
    (f'<AccessControlPolicy xmlns="{S3_NAMESPACE}"><Owner><ID>{OWNER}</ID></Owner>'
     "</AccessControlPolicy>").encode(),
])
def test_malformed_acl_documents(body):
    raises("MalformedACLError", 400, acl_from_xml, body, OWNER)


def test_acl_from_xml_too_many_grants():
    body = policy_xml(grant_xml("Group", f"<URI>{ALL_USERS}</URI>") * 101)
    raises("MalformedACLError", 400, acl_from_xml, body, OWNER)


def test_acl_from_xml_email_grantee():
    body = policy_xml(grant_xml("AmazonCustomerByEmail",
                                "<EmailAddress>a@example.com</EmailAddress>"))
    raises("UnresolvableGrantByEmailAddress", 400, acl_from_xml, body, OWNER)


def test_acl_from_xml_unknown_group_and_ids():
    raises("InvalidArgument", 400, acl_from_xml,
           policy_xml(grant_xml("Group", "<URI>http://example.com/group</URI>")), OWNER)
    raises("InvalidArgument", 400, acl_from_xml,
           policy_xml(grant_xml("CanonicalUser", "<ID>abc</ID>")), OWNER)
    body = policy_xml(grant_xml("CanonicalUser", f"<ID>{OTHER}</ID>"))
    raises("InvalidArgument", 400, acl_from_xml, body, OWNER, known_canonical=lambda c: False)
    assert acl_from_xml(body, OWNER, known_canonical={OTHER}.__contains__).grants == [
        Grant("CanonicalUser", OTHER, "READ")]


# --- ACL evaluation -------------------------------------------------------------------

def test_owner_always_has_full_control():
    acl = Acl(OWNER, [])
    for permission in PERMISSIONS:
        assert acl_allows(acl, ALICE_A, permission)
        assert not acl_allows(acl, ALICE_B, permission)
        assert not acl_allows(acl, None, permission)


def test_full_control_implies_everything():
    acl = Acl(OWNER, [Grant("CanonicalUser", OTHER, "FULL_CONTROL")])
    assert all(acl_allows(acl, BOB_B, p) for p in PERMISSIONS)
    assert not acl_allows(acl, CAROL_C, "READ")


def test_specific_permission_only():
    acl = Acl(OWNER, [Grant("CanonicalUser", OTHER, "READ")])
    assert acl_allows(acl, ALICE_B, "READ")
    assert not acl_allows(acl, ALICE_B, "WRITE")
    assert not acl_allows(acl, ALICE_B, "READ_ACP")


def test_group_grants():
    public = Acl(OWNER, [Grant("Group", ALL_USERS, "READ")])
    assert acl_allows(public, None, "READ") and acl_allows(public, CAROL_C, "READ")
    assert not acl_allows(public, None, "WRITE")
    authenticated = Acl(OWNER, [Grant("Group", AUTHENTICATED_USERS, "WRITE")])
    assert acl_allows(authenticated, CAROL_C, "WRITE")
    assert not acl_allows(authenticated, None, "WRITE")
    logs = Acl(OWNER, [Grant("Group", LOG_DELIVERY, "WRITE")])
    assert not acl_allows(logs, CAROL_C, "WRITE") and not acl_allows(logs, None, "WRITE")


# --- policies: parsing ----------------------------------------------------------------

def doc(*statements, version="2012-10-17", **extra) -> str:
    body = {"Version": version, "Statement": list(statements), **extra}
    if version is None:
        del body["Version"]
    return json.dumps(body)


def stmt(effect="Allow", principal="*", action="s3:GetObject",
         resource=f"{BUCKET_ARN}/*", **extra) -> dict:
    statement = {"Effect": effect, "Principal": principal, "Action": action,
                 "Resource": resource, **extra}
    return {key: value for key, value in statement.items() if value is not None}


def malformed(text, message: str | None = None, bucket: str = BUCKET, **kwargs) -> None:
    error = raises("MalformedPolicy", 400, parse_policy, text, bucket, **kwargs)
    if message is not None:
        assert error.message == message


def test_parse_minimal_policy():
    policy = parse_policy(doc(stmt(Sid="PublicRead")), BUCKET)
    assert policy.version == "2012-10-17" and policy.id is None
    (statement,) = policy.statements
    assert statement.sid == "PublicRead" and statement.effect == "Allow"
    assert statement.principals == (("*",),)
    assert statement.actions == ("s3:GetObject",)
    assert statement.resources == (f"{BUCKET_ARN}/*",)
    assert statement.conditions == ()


def test_parse_single_statement_object_default_version_and_bytes():
    text = json.dumps({"Id": "P1", "Statement": stmt()})
    policy = parse_policy(text.encode(), BUCKET)
    assert policy.version == "2008-10-17" and policy.id == "P1"
    assert len(policy.statements) == 1


def test_parse_principals():
    policy = parse_policy(doc(stmt(principal={
        "AWS": [ACCOUNT_B, f"arn:aws:iam::{ACCOUNT_C}:root",
                f"arn:aws:iam::{ACCOUNT_A}:user/alice",
                f"arn:aws:iam::{ACCOUNT_A}:user/team/dev/bob", "*"],
        "CanonicalUser": OTHER,
        "Service": "logging.s3.amazonaws.com"})), BUCKET)
    assert policy.statements[0].principals == (
        ("account", ACCOUNT_B), ("account", ACCOUNT_C), ("user", ACCOUNT_A, "alice"),
        ("user", ACCOUNT_A, "bob"), ("*",), ("canonical", OTHER),
        ("service", "logging.s3.amazonaws.com"))


@pytest.mark.parametrize("bad", [
    "alice", "", {}, [], {"AWS": []}, {"AWS": ""}, {"AWS": "12345"},
    {"AWS": "arn:aws:iam::111111111111:user/*"},
    {"AWS": "AKIAEXAMPLE"}, {"Federated": "cognito-identity.amazonaws.com"},
    {"CanonicalUser": "abc"}, {"AWS": 12},
])
def test_invalid_principals(bad):
    malformed(doc(stmt(principal=bad)), "Invalid principal in policy")


def test_principal_existence_callback():
    known = {f"arn:aws:iam::{ACCOUNT_B}:root", f"arn:aws:iam::{ACCOUNT_A}:user/alice", OTHER}
    ok = doc(stmt(principal={"AWS": [ACCOUNT_B, f"arn:aws:iam::{ACCOUNT_A}:user/alice"],
                             "CanonicalUser": OTHER}))
    parse_policy(ok, BUCKET, principal_exists=known.__contains__)
    for principal_value in ({"AWS": ACCOUNT_C}, {"AWS": f"arn:aws:iam::{ACCOUNT_A}:user/eve"},
                            {"CanonicalUser": OWNER}):
        malformed(doc(stmt(principal=principal_value)), "Invalid principal in policy",
                  principal_exists=known.__contains__)
    # "*" needs no lookup.
    parse_policy(doc(stmt()), BUCKET, principal_exists=lambda arn: False)


@pytest.mark.parametrize("resource", [
    "*", "arn:aws:s3:::other/*", "arn:aws:s3:::other", "arn:aws:s3:::", "photos/*",
    "arn:aws:iam::111111111111:root", "arn:aws:s3:::photosx/*", ["arn:aws:s3:::photos/*", "x"],
    [], 7,
])
def test_invalid_resources(resource):
    malformed(doc(stmt(action="s3:*", resource=resource)), "Policy has invalid resource")


@pytest.mark.parametrize("resource", [
    "arn:aws:s3:::photos", "arn:aws:s3:::photos/*", "arn:aws:s3:::photos/a/b?c",
    "arn:aws:s3:::*", "arn:aws:s3:::pho*", "arn:aws:s3:::*/*", "arn:aws:s3:::phot?s/*",
    "arn:aws:s3:::photos/home/${aws:username}/*",
])
def test_valid_resources(resource):
    parse_policy(doc(stmt(action="s3:*", resource=resource)), BUCKET)


@pytest.mark.parametrize("action", [
    "GetObject", "iam:CreateUser", "s3:", "s3:Get Object", ["s3:GetObject", "ec2:*"], [], 3,
])
def test_invalid_actions(action):
    malformed(doc(stmt(action=action)), "Policy has invalid action")


def test_valid_actions():
    parse_policy(doc(stmt(action=["s3:Get*", "S3:getobject", "s3:?etObject", "*"],
                          resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"])), BUCKET)


def test_action_must_apply_to_a_resource():
    message = "Action does not apply to any resource(s) in statement"
    malformed(doc(stmt(action="s3:GetObject", resource=BUCKET_ARN)), message)
    malformed(doc(stmt(action="s3:ListBucket", resource=f"{BUCKET_ARN}/*")), message)
    malformed(doc(stmt(action=["s3:ListBucket", "s3:PutObject"], resource=BUCKET_ARN)),
              message)
    # Wildcards, mixed resources and NotResource are fine.
    parse_policy(doc(stmt(action=["s3:ListBucket", "s3:GetObject"],
                          resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"])), BUCKET)
    parse_policy(doc(stmt(action="s3:Get*", resource=BUCKET_ARN)), BUCKET)
    parse_policy(doc(stmt(action="s3:ListBucket", resource="arn:aws:s3:::*")), BUCKET)
    parse_policy(doc(stmt(action="s3:GetObject", resource=None,
                          NotResource=BUCKET_ARN)), BUCKET)


@pytest.mark.parametrize("text, message", [
    ("", "Policies must be valid JSON and the first byte must be '{'"),
    ("[]", "Policies must be valid JSON and the first byte must be '{'"),
    ("{not json", "This policy contains invalid Json"),
    # a lone surrogate escape is JSON Python reads but no text S3 could store (was a 500)
    ('{"Version": "2012-10-17", "Sid": "\\ud800", "Statement": []}',
     "This policy contains invalid Json"),
    (json.dumps({"Version": "2012-10-17"}), "Missing required field Statement"),
    (json.dumps({"Version": "2012-10-17", "Statement": []}),
     "Could not parse the policy: Statement is empty!"),
    (json.dumps({"Version": "2012-10-17", "Statement": ["x"]}),
     "This policy contains invalid Json"),
    (doc(stmt(), version="2020-01-01"), "The policy must contain a valid version string"),
    (doc(stmt(effect="hello")), "Invalid effect: hello"),
    (doc(stmt(effect=None)), "Missing required field Effect"),
    (doc(stmt(principal=None)), "Missing required field Principal"),
    (doc(stmt(action=None)), "Missing required field Action"),
    (doc(stmt(resource=None)), "Missing required field Resource"),
    (doc(stmt(NotAction="s3:PutObject")), "Statement cannot contain both Action and NotAction"),
    (doc(stmt(NotPrincipal={"AWS": ACCOUNT_B})),
     "Statement cannot contain both Principal and NotPrincipal"),
    (doc(stmt(NotResource=BUCKET_ARN)),
     "Statement cannot contain both Resource and NotResource"),
    (doc(stmt(Sid="a"), stmt(Sid="a")), "Statement IDs (SID) in a single policy must be unique"),
    (doc(stmt(Sid=5)), "Statement Sid must be a string"),
    (doc(stmt(Bogus=1)), "Unknown field Bogus"),
    (doc(stmt(), Extra=1), "Unknown field Extra"),
    (doc(stmt(), Id=3), "Policy Id must be a string"),
])
def test_malformed_policies(text, message):
    malformed(text, message)


def test_policy_size_limit():
    big_sid = "x" * (MAX_POLICY_SIZE + 10)
    malformed(doc(stmt(Sid=big_sid)), "Policies must be less than 20 KB")
    # Whitespace does not count.
    padded = json.dumps(json.loads(doc(stmt())), indent=40) + " " * 30000
    parse_policy(padded, BUCKET)


@pytest.mark.parametrize("condition, message", [
    ({"StringEqualz": {"aws:username": "a"}}, "Invalid Condition type : StringEqualz"),
    ({"ForSomeValues:StringLike": {"s3:prefix": "a"}},
     "Invalid Condition type : ForSomeValues:StringLike"),
    ({"NullIfExists": {"s3:prefix": "true"}}, "Invalid Condition type : NullIfExists"),
    ({"StringEquals": {"username": "a"}}, "Policy has an invalid condition key"),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.300/8"}}, "Invalid IP address in Conditions"),
    ({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "bogus"]}},
     "Invalid IP address in Conditions"),
    ({"NumericLessThan": {"s3:max-keys": "ten"}}, None),
    ({"DateGreaterThan": {"aws:CurrentTime": "yesterday"}}, None),
    ({"Null": {"s3:prefix": "maybe"}}, None),
    ({"StringEquals": {"aws:username": {"a": 1}}}, None),
    ({"StringEquals": "aws:username"}, "This policy contains invalid Json"),
    ("StringEquals", "This policy contains invalid Json"),
])
def test_malformed_conditions(condition, message):
    malformed(doc(stmt(Condition=condition)), message)


def test_condition_parsing():
    policy = parse_policy(doc(stmt(Condition={
        "ForAnyValue:StringLikeIfExists": {"S3:Prefix": ["home/*", "public/"]},
        "NumericLessThanEquals": {"s3:max-keys": 10},
        "Bool": {"aws:SecureTransport": True},
    })), BUCKET)
    first, second, third = policy.statements[0].conditions
    assert (first.qualifier, first.base, first.if_exists, first.key, first.values) == (
        "ForAnyValue", "StringLike", True, "s3:prefix", ("home/*", "public/"))
    assert (second.base, second.values) == ("NumericLessThanEquals", ("10",))
    assert (third.base, third.values) == ("Bool", ("true",))


# --- policies: evaluation -------------------------------------------------------------

def policy_of(*statements, version="2012-10-17"):
    return parse_policy(doc(*statements, version=version), BUCKET)


OBJ = f"{BUCKET_ARN}/docs/report.pdf"


def test_no_applicable_statement_is_none():
    policy = policy_of(stmt(principal={"AWS": ACCOUNT_B}))
    assert evaluate(policy, CAROL_C, "s3:GetObject", OBJ, {}) is None
    assert evaluate(policy, ALICE_B, "s3:PutObject", OBJ, {}) is None
    assert evaluate(policy, ALICE_B, "s3:GetObject", OBJ, {}) == "Allow"


def test_anonymous_and_star():
    for principal_value in ("*", {"AWS": "*"}):
        policy = policy_of(stmt(principal=principal_value))
        assert evaluate(policy, None, "s3:GetObject", OBJ, {}) == "Allow"
        assert evaluate(policy, CAROL_C, "s3:GetObject", OBJ, {}) == "Allow"
    account_only = policy_of(stmt(principal={"AWS": ACCOUNT_B}))
    assert evaluate(account_only, None, "s3:GetObject", OBJ, {}) is None


def test_account_principals_match_every_user_of_the_account():
    for value in (ACCOUNT_B, f"arn:aws:iam::{ACCOUNT_B}:root"):
        policy = policy_of(stmt(principal={"AWS": value}))
        assert evaluate(policy, ALICE_B, "s3:GetObject", OBJ) == "Allow"
        assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) == "Allow"
        assert evaluate(policy, ALICE_A, "s3:GetObject", OBJ) is None


def test_user_principal_matches_only_that_user():
    policy = policy_of(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT_B}:user/alice"}))
    assert evaluate(policy, ALICE_B, "s3:GetObject", OBJ) == "Allow"
    assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) is None
    assert evaluate(policy, ALICE_A, "s3:GetObject", OBJ) is None  # same name, other account
    with_path = policy_of(stmt(principal={"AWS": f"arn:aws:iam::{ACCOUNT_B}:user/ops/bob"}))
    assert evaluate(with_path, BOB_B, "s3:GetObject", OBJ) == "Allow"


def test_canonical_and_service_principals():
    policy = policy_of(stmt(principal={"CanonicalUser": OTHER}))
    assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) == "Allow"
    assert evaluate(policy, CAROL_C, "s3:GetObject", OBJ) is None
    service = policy_of(stmt(principal={"Service": "logging.s3.amazonaws.com"}))
    assert evaluate(service, BOB_B, "s3:GetObject", OBJ) is None
    assert evaluate(service, None, "s3:GetObject", OBJ) is None


def test_not_principal():
    policy = policy_of(stmt(effect="Deny", principal=None,
                            NotPrincipal={"AWS": f"arn:aws:iam::{ACCOUNT_B}:user/alice"}))
    assert evaluate(policy, ALICE_B, "s3:GetObject", OBJ) is None
    assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) == "Deny"
    assert evaluate(policy, None, "s3:GetObject", OBJ) == "Deny"


def test_deny_beats_allow_in_any_order():
    allow = stmt(action="s3:*", resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"])
    deny = stmt(effect="Deny", principal={"AWS": ACCOUNT_C}, action="s3:GetObject")
    for statements in ((allow, deny), (deny, allow)):
        policy = policy_of(*statements)
        assert evaluate(policy, CAROL_C, "s3:GetObject", OBJ) == "Deny"
        assert evaluate(policy, CAROL_C, "s3:PutObject", OBJ) == "Allow"
        assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) == "Allow"


def test_action_wildcards_and_case():
    policy = policy_of(stmt(action=["s3:Get*", "s3:?utObjectAcl"]))
    assert evaluate(policy, None, "s3:GetObject", OBJ) == "Allow"
    assert evaluate(policy, None, "S3:GETOBJECTTAGGING", OBJ) == "Allow"
    assert evaluate(policy, None, "s3:PutObjectAcl", OBJ) == "Allow"
    assert evaluate(policy, None, "s3:PutObject", OBJ) is None
    everything = policy_of(stmt(action="*", resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"]))
    assert evaluate(everything, None, "s3:DeleteBucket", BUCKET_ARN) == "Allow"


def test_not_action():
    policy = policy_of(stmt(effect="Deny", action=None, NotAction=["s3:Get*", "s3:List*"],
                            resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"]))
    assert evaluate(policy, BOB_B, "s3:PutObject", OBJ) == "Deny"
    assert evaluate(policy, BOB_B, "s3:GetObject", OBJ) is None
    assert evaluate(policy, BOB_B, "s3:ListBucket", BUCKET_ARN) is None


def test_resource_wildcards():
    policy = policy_of(stmt(resource=[f"{BUCKET_ARN}/public/*", f"{BUCKET_ARN}/file?.txt"]))
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/public/a/b.png") == "Allow"
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/file1.txt") == "Allow"
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/file10.txt") is None
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/private/a") is None
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/Public/a") is None  # case
    assert evaluate(policy, None, "s3:GetObject", BUCKET_ARN) is None
    # Keys with regex metacharacters and newlines match literally.
    literal = policy_of(stmt(resource=f"{BUCKET_ARN}/a.b(c)*"))
    assert evaluate(literal, None, "s3:GetObject", f"{BUCKET_ARN}/a.b(c)\nd") == "Allow"
    assert evaluate(literal, None, "s3:GetObject", f"{BUCKET_ARN}/aXb(c)") is None


def test_not_resource():
    policy = policy_of(stmt(effect="Deny", action="s3:*", resource=None,
                            NotResource=[f"{BUCKET_ARN}/public/*", BUCKET_ARN]))
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/secret") == "Deny"
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/public/x") is None
    assert evaluate(policy, None, "s3:ListBucket", BUCKET_ARN) is None


def test_policy_variables_in_resources_need_version_2012():
    statement = stmt(principal={"AWS": ACCOUNT_B},
                     resource=f"{BUCKET_ARN}/home/${{aws:username}}/*")
    policy = policy_of(statement)
    context = {"aws:username": "alice"}
    assert evaluate(policy, ALICE_B, "s3:GetObject", f"{BUCKET_ARN}/home/alice/x",
                    context) == "Allow"
    assert evaluate(policy, ALICE_B, "s3:GetObject", f"{BUCKET_ARN}/home/bob/x",
                    context) is None
    # Unresolvable variable: the resource matches nothing.
    assert evaluate(policy, ALICE_B, "s3:GetObject", f"{BUCKET_ARN}/home/alice/x") is None
    # Version 2008: the text is literal.
    old = policy_of(statement, version="2008-10-17")
    assert evaluate(old, ALICE_B, "s3:GetObject", f"{BUCKET_ARN}/home/alice/x",
                    context) is None
    assert evaluate(old, ALICE_B, "s3:GetObject", f"{BUCKET_ARN}/home/${{aws:username}}/x",
                    context) == "Allow"


def test_policy_variable_values_are_literal_and_escapes():
    policy = policy_of(stmt(resource=f"{BUCKET_ARN}/${{aws:username}}/${{*}}"))
    # A '*' coming from a variable is not a wildcard; ${*} is a literal '*'.
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/a*/*",
                    {"aws:username": "a*"}) == "Allow"
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/abc/*",
                    {"aws:username": "a*"}) is None
    assert evaluate(policy, None, "s3:GetObject", f"{BUCKET_ARN}/a*/x",
                    {"aws:username": "a*"}) is None
    with_default = policy_of(stmt(resource=f"{BUCKET_ARN}/${{aws:username, 'guest'}}/*"))
    assert evaluate(with_default, None, "s3:GetObject", f"{BUCKET_ARN}/guest/x") == "Allow"


# --- conditions -----------------------------------------------------------------------

def allowed_with(condition: dict, context: dict, action="s3:GetObject", resource=OBJ,
                 requester=None) -> bool:
    policy = policy_of(stmt(action="s3:*", resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"],
                            Condition=condition))
    return evaluate(policy, requester, action, resource, context) == "Allow"


def test_string_conditions():
    cond = {"StringEquals": {"aws:username": ["alice", "bob"]}}
    assert allowed_with(cond, {"aws:username": "bob"})
    assert not allowed_with(cond, {"aws:username": "Bob"})
    assert not allowed_with(cond, {})
    negated = {"StringNotEquals": {"aws:username": ["alice", "bob"]}}
    assert allowed_with(negated, {"aws:username": "carol"})
    assert not allowed_with(negated, {"aws:username": "alice"})
    assert allowed_with(negated, {})  # missing key satisfies a negated operator
    ignore = {"StringEqualsIgnoreCase": {"aws:username": "ALICE"}}
    assert allowed_with(ignore, {"aws:username": "alice"})
    assert not allowed_with({"StringNotEqualsIgnoreCase": {"aws:username": "ALICE"}},
                            {"aws:username": "Alice"})


def test_string_like_conditions():
    cond = {"StringLike": {"s3:prefix": ["home/*", "tmp/?"]}}
    assert allowed_with(cond, {"s3:prefix": "home/alice/"})
    assert allowed_with(cond, {"s3:prefix": "tmp/x"})
    assert not allowed_with(cond, {"s3:prefix": "tmp/xy"})
    assert not allowed_with(cond, {"s3:prefix": "Home/alice"})
    assert not allowed_with(cond, {})
    not_like = {"StringNotLike": {"s3:prefix": "secret*"}}
    assert allowed_with(not_like, {"s3:prefix": "public"})
    assert not allowed_with(not_like, {"s3:prefix": "secret/x"})


def test_condition_keys_are_case_insensitive():
    assert allowed_with({"StringEquals": {"AWS:UserName": "alice"}}, {"aws:username": "alice"})
    assert allowed_with({"StringEquals": {"aws:username": "alice"}}, {"AWS:USERNAME": "alice"})


def test_condition_variables():
    cond = {"StringLike": {"s3:prefix": "home/${aws:username}/*"}}
    assert allowed_with(cond, {"s3:prefix": "home/alice/docs", "aws:username": "alice"})
    assert not allowed_with(cond, {"s3:prefix": "home/bob/docs", "aws:username": "alice"})
    assert not allowed_with(cond, {"s3:prefix": "home/alice/docs"})


def test_numeric_conditions():
    def check(operator, policy_value, request_value):
        return allowed_with({operator: {"s3:max-keys": policy_value}},
                            {"s3:max-keys": request_value})

    assert check("NumericEquals", "10", "10") and not check("NumericEquals", 10, "11")
    assert check("NumericNotEquals", "10", "11") and not check("NumericNotEquals", 10, "10")
    assert check("NumericLessThan", 10, "9") and not check("NumericLessThan", 10, "10")
    assert check("NumericLessThanEquals", 10, "10") and not check("NumericLessThanEquals",
                                                                    10, "11")
    assert check("NumericGreaterThan", "1.5", "2") and not check("NumericGreaterThan", 2, "2")
    assert check("NumericGreaterThanEquals", 2, "2") and not check(
        "NumericGreaterThanEquals", 2, "1")
    assert not check("NumericEquals", 10, "ten")  # unparsable request value never matches


def test_date_conditions():
    def check(operator, policy_value, now):
        return allowed_with({operator: {"aws:CurrentTime": policy_value}},
                            {"aws:CurrentTime": now})

    assert check("DateLessThan", "2030-01-01T00:00:00Z", "2025-06-01T12:00:00Z")
    assert not check("DateLessThan", "2020-01-01T00:00:00Z", "2025-06-01T12:00:00Z")
    assert check("DateGreaterThan", "2020-01-01", "2025-06-01T12:00:00Z")
    assert check("DateEquals", "2025-06-01T12:00:00Z", "2025-06-01T14:00:00+02:00")
    assert check("DateNotEquals", "2025-06-01T12:00:00Z", "2025-06-01T12:00:01Z")
    assert check("DateLessThanEquals", "2025-06-01T12:00:00Z", "2025-06-01T12:00:00Z")
    assert check("DateGreaterThanEquals", "1748779200", "2025-06-01T12:00:00Z")  # epoch
    assert not check("DateGreaterThan", "2020-01-01", "garbage")


def test_bool_condition():
    cond = {"Bool": {"aws:SecureTransport": "false"}}
    assert allowed_with(cond, {"aws:SecureTransport": False})
    assert allowed_with(cond, {"aws:SecureTransport": "FALSE"})
    assert not allowed_with(cond, {"aws:SecureTransport": True})
    assert not allowed_with(cond, {})


def test_ip_conditions():
    cond = {"IpAddress": {"aws:SourceIp": ["192.168.1.0/24", "10.0.0.7", "2001:db8::/32"]}}
    assert allowed_with(cond, {"aws:SourceIp": "192.168.1.77"})
    assert allowed_with(cond, {"aws:SourceIp": "10.0.0.7"})
    assert allowed_with(cond, {"aws:SourceIp": "2001:db8::1"})
    assert not allowed_with(cond, {"aws:SourceIp": "10.0.0.8"})
    assert not allowed_with(cond, {"aws:SourceIp": "not-an-ip"})
    negated = {"NotIpAddress": {"aws:SourceIp": "127.0.0.0/8"}}
    assert allowed_with(negated, {"aws:SourceIp": "192.168.1.1"})
    assert not allowed_with(negated, {"aws:SourceIp": "127.0.0.1"})


def test_arn_and_binary_conditions():
    cond = {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::222222222222:user/*"}}
    assert allowed_with(cond, {"aws:PrincipalArn": "arn:aws:iam::222222222222:user/bob"})
    assert not allowed_with(cond, {"aws:PrincipalArn": "arn:aws:iam::333333333333:user/bob"})
    assert allowed_with({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::1:user/x"}},
                        {"aws:PrincipalArn": "arn:aws:iam::1:user/y"})
    assert allowed_with({"BinaryEquals": {"s3:x-amz-content": "QUJD"}},
                        {"s3:x-amz-content": "QUJD"})


def test_null_condition():
    assert allowed_with({"Null": {"s3:prefix": "true"}}, {})
    assert not allowed_with({"Null": {"s3:prefix": "true"}}, {"s3:prefix": "a"})
    assert allowed_with({"Null": {"s3:prefix": "false"}}, {"s3:prefix": "a"})
    assert not allowed_with({"Null": {"s3:prefix": "false"}}, {})


def test_if_exists():
    cond = {"StringEqualsIfExists": {"s3:x-amz-acl": "private"}}
    assert allowed_with(cond, {})
    assert allowed_with(cond, {"s3:x-amz-acl": "private"})
    assert not allowed_with(cond, {"s3:x-amz-acl": "public-read"})
    ip = {"IpAddressIfExists": {"aws:SourceIp": "10.0.0.0/8"}}
    assert allowed_with(ip, {}) and not allowed_with(ip, {"aws:SourceIp": "11.0.0.1"})
    negated = {"StringNotEqualsIfExists": {"s3:x-amz-acl": "public-read"}}
    assert allowed_with(negated, {}) and not allowed_with(negated,
                                                          {"s3:x-amz-acl": "public-read"})


def test_set_qualifiers():
    any_value = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a", "b"]}}
    assert allowed_with(any_value, {"aws:TagKeys": ["x", "b"]})
    assert not allowed_with(any_value, {"aws:TagKeys": ["x", "y"]})
    assert not allowed_with(any_value, {})
    all_values = {"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}
    assert allowed_with(all_values, {"aws:TagKeys": ["a", "b"]})
    assert allowed_with(all_values, {"aws:TagKeys": ["a"]})
    assert not allowed_with(all_values, {"aws:TagKeys": ["a", "z"]})
    assert allowed_with(all_values, {})  # no values: vacuously true
    assert allowed_with(all_values, {"aws:TagKeys": []})
    all_not = {"ForAllValues:StringNotLike": {"aws:TagKeys": "secret*"}}
    assert allowed_with(all_not, {"aws:TagKeys": ["a", "b"]})
    assert not allowed_with(all_not, {"aws:TagKeys": ["a", "secret1"]})
    any_not = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": "a"}}
    assert allowed_with(any_not, {"aws:TagKeys": ["a", "b"]})
    assert not allowed_with(any_not, {"aws:TagKeys": ["a"]})
    assert not allowed_with(any_not, {})


def test_plain_operator_on_a_multi_valued_key():
    assert allowed_with({"StringEquals": {"aws:TagKeys": "b"}}, {"aws:TagKeys": ["a", "b"]})
    assert not allowed_with({"StringNotEquals": {"aws:TagKeys": "b"}},
                            {"aws:TagKeys": ["a", "b"]})


def test_conditions_are_anded_across_operators_and_keys():
    cond = {"StringEquals": {"aws:username": "alice", "s3:prefix": "home/"},
            "Bool": {"aws:SecureTransport": "true"}}
    full = {"aws:username": "alice", "s3:prefix": "home/", "aws:SecureTransport": True}
    assert allowed_with(cond, full)
    for key in full:
        assert not allowed_with(cond, {k: v for k, v in full.items() if k != key})


def test_existing_object_tag_condition():
    cond = {"StringEquals": {"s3:ExistingObjectTag/classification": "public"}}
    assert allowed_with(cond, {"s3:ExistingObjectTag/classification": "public"})
    assert not allowed_with(cond, {"s3:ExistingObjectTag/classification": "secret"})


def test_deny_with_condition_typical_tls_and_ip_policy():
    policy = policy_of(
        stmt(action="s3:GetObject"),
        stmt(effect="Deny", action="s3:*", resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"],
             Condition={"Bool": {"aws:SecureTransport": "false"}}),
        stmt(effect="Deny", action="s3:*", resource=[BUCKET_ARN, f"{BUCKET_ARN}/*"],
             Condition={"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}))
    good = {"aws:SecureTransport": True, "aws:SourceIp": "10.1.2.3"}
    assert evaluate(policy, None, "s3:GetObject", OBJ, good) == "Allow"
    assert evaluate(policy, None, "s3:GetObject", OBJ,
                    {**good, "aws:SecureTransport": False}) == "Deny"
    assert evaluate(policy, None, "s3:GetObject", OBJ,
                    {**good, "aws:SourceIp": "8.8.8.8"}) == "Deny"


# --- decide ---------------------------------------------------------------------------

PRIVATE = Acl(OWNER, [OWNER_FULL])


def decide_for(requester, *, is_owner=False, acl=PRIVATE, permission="READ", policy=None,
               action="s3:GetObject", resource=OBJ, context=None) -> bool:
    return decide(requester, is_owner=is_owner, acl=acl, permission=permission,
                  policy=policy, action=action, resource=resource, context=context or {})


def test_decide_owner_and_strangers():
    assert decide_for(ALICE_A, is_owner=True)
    assert not decide_for(ALICE_B)
    assert not decide_for(None)


def test_decide_acl_grants():
    public = canned_acl("public-read", OWNER)
    assert decide_for(None, acl=public)
    assert not decide_for(None, acl=public, permission="WRITE")
    assert not decide_for(None, acl=public, permission=None)  # no ACL permission for action
    assert not decide_for(ALICE_B, acl=None)


def test_decide_policy_allow_and_deny():
    allow = policy_of(stmt(principal={"AWS": ACCOUNT_B}))
    assert decide_for(ALICE_B, policy=allow)
    assert not decide_for(CAROL_C, policy=allow)
    deny = policy_of(stmt(effect="Deny", principal="*"))
    assert not decide_for(ALICE_A, is_owner=True, policy=deny)  # explicit deny beats owner
    assert not decide_for(None, acl=canned_acl("public-read", OWNER), policy=deny)
    assert decide_for(ALICE_A, is_owner=True, policy=deny, action="s3:PutObject")


def test_decide_deny_with_condition_falls_through_when_condition_fails():
    deny = policy_of(stmt(effect="Deny", principal="*",
                          Condition={"Bool": {"aws:SecureTransport": "false"}}))
    public = canned_acl("public-read", OWNER)
    assert decide_for(None, acl=public, policy=deny, context={"aws:SecureTransport": True})
    assert not decide_for(None, acl=public, policy=deny,
                          context={"aws:SecureTransport": False})


def test_owner_admin_keeps_bucket_policy_actions_despite_deny():
    deny_all = policy_of(stmt(effect="Deny", action="s3:*", resource=BUCKET_ARN))
    for action in ("s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy"):
        assert decide_for(ADMIN_A, is_owner=True, policy=deny_all, action=action,
                          resource=BUCKET_ARN, permission=None)
        assert not decide_for(ALICE_A, is_owner=True, policy=deny_all, action=action,
                              resource=BUCKET_ARN, permission=None)
    assert not decide_for(ADMIN_A, is_owner=True, policy=deny_all, action="s3:ListBucket",
                          resource=BUCKET_ARN)
    assert not decide_for(principal(ACCOUNT_B, "admin"), policy=deny_all,
                          action="s3:PutBucketPolicy", resource=BUCKET_ARN, permission=None)


# --- interoperability with botocore ---------------------------------------------------

def test_botocore_reads_our_acl_and_we_read_botocores():
    import botocore.parsers
    import botocore.serialize
    import botocore.session

    model = botocore.session.get_session().get_service_model("s3")
    acl = Acl(OWNER, [OWNER_FULL, Grant("Group", ALL_USERS, "READ")])
    parsed = botocore.parsers.RestXMLParser().parse(
        {"body": acl_to_xml(acl, NAMES.get), "headers": {}, "status_code": 200},
        model.operation_model("GetBucketAcl").output_shape)
    assert parsed["Owner"] == {"ID": OWNER, "DisplayName": "alpha"}
    assert parsed["Grants"] == [
        {"Grantee": {"Type": "CanonicalUser", "ID": OWNER, "DisplayName": "alpha"},
         "Permission": "FULL_CONTROL"},
        {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"}]

    request = botocore.serialize.RestXMLSerializer().serialize_to_request(
        {"Bucket": BUCKET, "AccessControlPolicy": {"Owner": {"ID": OWNER}, "Grants": [
            {"Grantee": {"Type": "CanonicalUser", "ID": OTHER}, "Permission": "WRITE"},
            {"Grantee": {"Type": "Group", "URI": LOG_DELIVERY}, "Permission": "READ_ACP"}]}},
        model.operation_model("PutBucketAcl"))
    assert acl_from_xml(request["body"], OWNER) == Acl(OWNER, [
        Grant("CanonicalUser", OTHER, "WRITE"), Grant("Group", LOG_DELIVERY, "READ_ACP")])
