"""The one policy engine (eucalite.policy), pure: IAM documents and their errors, and
decisions for EC2, S3 and IAM requests: allow, deny, nothing said, NotAction, NotResource,
every condition family (IfExists, set operators), policy variables, identity and resource
policies together, and the statement that decided."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from eucalite.errors import AwsError
from eucalite.policy import arns
from eucalite.policy.document import check, parse
from eucalite.policy.evaluation import Caller, authorize, request_context
from eucalite.policy.grammar import IAM_INLINE_USER, IAM_MANAGED, IAM_TRUST, VERSION_2008

#: A resource policy in IAM's words (a Principal, resources), and an identity policy that
#: accepts version 2008 (where ${...} is literal text).
RESOURCE = dataclasses.replace(IAM_TRUST, requires_resource=True, check_statement=None,
                               prohibited_fields=())
OLD_IDENTITY = dataclasses.replace(IAM_MANAGED, min_version=VERSION_2008)

ACCOUNT, OTHER = "111111111111", "222222222222"
REGION = "eucalyptus"
ALICE = Caller(ACCOUNT, "alice", "AIDAALICE", tags={"team": "blue", "cost": "42"})
BOB = Caller(ACCOUNT, "bob", "AIDABOB", path="/ops/", tags={"team": "red"})

#: One request of each service: (action, resource ARN).
EC2 = ("ec2:TerminateInstances", arns.ec2(REGION, ACCOUNT, "instance", "i-12345678"))
S3 = ("s3:GetObject", arns.s3("photos", "home/alice/cat.jpg"))
IAM = ("iam:CreateAccessKey", arns.user(ACCOUNT, "alice"))
SERVICES = {"ec2": EC2, "s3": S3, "iam": IAM}


def policy(*statements, version="2012-10-17"):
    return parse(json.dumps({"Version": version, "Statement": list(statements)}), IAM_MANAGED)


def allow(action="*", resource="*", **extra):
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action="*", resource="*", **extra):
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def decide(service: str, *statements, caller=ALICE, keys=None, resource=None):
    action, arn = SERVICES[service]
    context = request_context(caller, keys)
    return authorize(caller, action, resource or arn, identity=[("p", policy(*statements))],
                     context=context).effect


# --- the matrix: effects × services ---------------------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_allow_deny_and_silence(service):
    action, arn = SERVICES[service]
    vendor = service
    assert decide(service, allow(action, arn)) == "Allow"
    assert decide(service, allow(f"{vendor}:*", "*")) == "Allow"
    assert decide(service, allow(action.upper(), arn)) == "Allow"   # actions ignore case
    head, tail = arn.rsplit("/", 1)
    # Resource ids keep their case.
    assert decide(service, allow(action, f"{head}/{tail.upper()}")) == "ImplicitDeny"
    assert decide(service, allow(f"{vendor}:Describe*", arn)) == "ImplicitDeny"
    assert decide(service, allow("other:*", "*")) == "ImplicitDeny"
    assert decide(service, allow(), deny(action, arn)) == "Deny"
    assert decide(service, deny(action, arn), allow()) == "Deny"
    assert decide(service, deny("other:*")) == "ImplicitDeny"


@pytest.mark.parametrize("service", SERVICES)
def test_not_action_and_not_resource(service):
    action, arn = SERVICES[service]
    assert decide(service, {"Effect": "Allow", "NotAction": "other:*", "Resource": "*"}) == \
        "Allow"
    assert decide(service, {"Effect": "Allow", "NotAction": action, "Resource": "*"}) == \
        "ImplicitDeny"
    assert decide(service, {"Effect": "Allow", "Action": "*",
                            "NotResource": "arn:aws:other:::x"}) == "Allow"
    assert decide(service, {"Effect": "Allow", "Action": "*", "NotResource": arn}) == \
        "ImplicitDeny"
    # "Deny everything but what I name" leaves the named action to the other statements.
    assert decide(service, allow(), {"Effect": "Deny", "NotAction": action,
                                     "Resource": "*"}) == "Allow"
    assert decide(service, allow(), {"Effect": "Deny", "NotAction": "other:*",
                                     "Resource": "*"}) == "Deny"


def test_resource_wildcards_per_service():
    assert decide("ec2", allow("ec2:*", f"arn:aws:ec2:*:{ACCOUNT}:instance/*")) == "Allow"
    assert decide("ec2", allow("ec2:*", f"arn:aws:ec2:*:{OTHER}:instance/*")) == "ImplicitDeny"
    assert decide("ec2", allow("ec2:*", f"arn:aws:ec2:*:{ACCOUNT}:volume/*")) == "ImplicitDeny"
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/home/*")) == "Allow"
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/home/?????/*")) == "Allow"
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos")) == "ImplicitDeny"
    assert decide("iam", allow("iam:*", f"arn:aws:iam::{ACCOUNT}:user/*")) == "Allow"
    assert decide("iam", allow("iam:*", f"arn:aws:iam::{ACCOUNT}:group/*")) == "ImplicitDeny"


# --- conditions × services ------------------------------------------------------------

CONDITIONS = [
    # (condition, keys that satisfy it, keys that do not)
    ({"StringEquals": {"aws:username": "alice"}}, {}, None),
    ({"StringNotEquals": {"aws:username": "bob"}}, {}, None),
    ({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "BLUE"}}, {}, None),
    ({"StringLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/al*"}}, {}, None),
    ({"NumericLessThan": {"aws:PrincipalTag/cost": "100"}}, {}, None),
    ({"NumericGreaterThanEquals": {"s3:max-keys": 10}}, {"s3:max-keys": "10"},
     {"s3:max-keys": "9"}),
    ({"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}, {},
     {"aws:CurrentTime": "2019-12-31T23:59:59Z"}),
    ({"DateLessThan": {"aws:EpochTime": "4102444800"}}, {}, {"aws:EpochTime": "4102444801"}),
    ({"Bool": {"aws:SecureTransport": "true"}}, {"aws:SecureTransport": True},
     {"aws:SecureTransport": False}),
    ({"BinaryEquals": {"s3:x-amz-content": "QUJD"}}, {"s3:x-amz-content": "QUJD"},
     {"s3:x-amz-content": "QUJE"}),
    ({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "10.1.2.3"},
     {"aws:SourceIp": "192.168.0.1"}),
    ({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}, {"aws:SourceIp": "192.168.0.1"},
     {"aws:SourceIp": "10.1.2.3"}),
    ({"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/alice"}}, {}, None),
    ({"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:user/ops/*"}}, {}, None),
    ({"Null": {"ec2:ResourceTag/owner": "false"}}, {"ec2:ResourceTag/owner": "alice"}, {}),
    ({"StringEquals": {"ec2:ResourceTag/owner": "${aws:username}"}},
     {"ec2:ResourceTag/owner": "alice"}, {"ec2:ResourceTag/owner": "bob"}),
    ({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}, {"s3:prefix": "home/alice/x"},
     {"s3:prefix": "home/bob/x"}),
    ({"StringEqualsIfExists": {"aws:RequestTag/team": "blue"}}, {},
     {"aws:RequestTag/team": "red"}),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost"]}},
     {"aws:TagKeys": ["team"]}, {"aws:TagKeys": ["team", "secret"]}),
    ({"ForAnyValue:StringLike": {"aws:TagKeys": "sec*"}}, {"aws:TagKeys": ["a", "secret"]},
     {"aws:TagKeys": ["a", "b"]}),
]


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("condition, good, bad", CONDITIONS,
                         ids=[next(iter(c[0])) + ":" + next(iter(next(iter(c[0].values()))))
                              for c in CONDITIONS])
def test_condition_families(service, condition, good, bad):
    assert decide(service, allow(Condition=condition), keys=good) == "Allow"
    if bad is not None:
        assert decide(service, allow(Condition=condition), keys=bad) == "ImplicitDeny"
    else:   # the caller-derived keys decide: bob is not alice
        assert decide(service, allow(Condition=condition), caller=BOB, keys=good) == \
            "ImplicitDeny"
    # The same condition on a Deny statement denies exactly when it holds.
    assert decide(service, allow(), deny(Condition=condition), keys=good) == "Deny"


def test_missing_keys_fail_positive_operators_and_pass_if_exists():
    assert decide("ec2", allow(Condition={"StringEquals": {"ec2:ResourceTag/x": "1"}})) == \
        "ImplicitDeny"
    assert decide("ec2", allow(Condition={"StringEqualsIfExists":
                                          {"ec2:ResourceTag/x": "1"}})) == "Allow"
    assert decide("ec2", allow(Condition={"ForAnyValue:StringEquals":
                                          {"aws:TagKeys": "a"}})) == "ImplicitDeny"
    assert decide("ec2", allow(Condition={"ForAllValues:StringEquals":
                                          {"aws:TagKeys": "a"}})) == "Allow"


# --- policy variables -----------------------------------------------------------------

@pytest.mark.parametrize("resource, caller, expected", [
    ("arn:aws:s3:::photos/home/${aws:username}/*", ALICE, "Allow"),
    ("arn:aws:s3:::photos/home/${aws:username}/*", BOB, "ImplicitDeny"),
    ("arn:aws:s3:::photos/home/${aws:userid, 'alice'}/*", ALICE, "ImplicitDeny"),
    ("arn:aws:s3:::photos/home/${aws:PrincipalTag/nope, 'alice'}/*", BOB, "Allow"),
    ("arn:aws:s3:::photos/${aws:PrincipalTag/team}/*", ALICE, "ImplicitDeny"),
])
def test_variables_in_resources(resource, caller, expected):
    assert decide("s3", allow("s3:GetObject", resource), caller=caller) == expected


def test_principal_tag_and_userid_variables():
    tagged = arns.s3("photos", "blue/x")
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/${aws:PrincipalTag/team}/*"),
                  resource=tagged) == "Allow"
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/${aws:PrincipalTag/team}/*"),
                  caller=BOB, resource=tagged) == "ImplicitDeny"
    assert decide("iam", allow("iam:*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}")) \
        == "Allow"
    assert decide("iam", allow("iam:*", f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"),
                  caller=BOB) == "ImplicitDeny"
    assert decide("ec2", allow(Condition={"StringEquals": {"ec2:ResourceTag/id":
                                                           "${aws:userid}"}}),
                  keys={"ec2:ResourceTag/id": "AIDAALICE"}) == "Allow"


def test_literal_variables_and_version_2008():
    star = arns.s3("photos", "a*?$")
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/a${*}${?}${$}"),
                  resource=star) == "Allow"
    assert decide("s3", allow("s3:*", "arn:aws:s3:::photos/a${*}${?}${$}"),
                  resource=arns.s3("photos", "abc$")) == "ImplicitDeny"
    old = parse(json.dumps({"Version": "2008-10-17", "Statement": [
        allow("s3:*", "arn:aws:s3:::photos/home/${aws:username}/*")]}), OLD_IDENTITY)
    assert authorize(ALICE, *S3, identity=[("old", old)]).effect == "ImplicitDeny"


# --- identity and resource policies together, explanations ----------------------------

def test_identity_and_resource_policies_combine():
    bucket = parse(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "Team", "Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "s3:*",
         "Resource": "arn:aws:s3:::photos/*"}]}), RESOURCE)
    nothing = policy(allow("ec2:*"))
    decision = authorize(ALICE, *S3, identity=[("EC2Only", nothing)], resource_policy=bucket)
    assert decision.allowed and decision.decided_by.policy == "resource policy"
    assert decision.decided_by.sid == "Team"
    stranger = Caller(OTHER, "eve")
    assert authorize(stranger, *S3, resource_policy=bucket).effect == "ImplicitDeny"
    blocked = policy({"Sid": "NoPhotos", **deny("s3:*", "arn:aws:s3:::photos/*")})
    decision = authorize(ALICE, *S3, identity=[("EC2Only", nothing), ("Block", blocked)],
                         resource_policy=bucket)
    assert decision.effect == "Deny"
    assert decision.explain() == "Explicitly denied by statement 'NoPhotos' of Block."


def test_no_policy_is_implicit_deny_and_explains_itself():
    decision = authorize(ALICE, *EC2)
    assert not decision.allowed and decision.decided_by is None
    assert decision.explain() == "Implicitly denied: no statement allows this request."
    second = authorize(ALICE, *EC2, identity=[("Ops", policy(deny("iam:*"), allow("ec2:*")))])
    assert second.explain() == "Allowed by statement #2 of Ops."


def test_request_context_derives_caller_and_clock_keys():
    now = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    context = request_context(BOB, {"aws:SourceIp": "10.0.0.1", "aws:username": "x"}, now=now)
    assert context["aws:currenttime"] == ["2030-01-02T03:04:05Z"]
    assert context["aws:epochtime"] == [str(int(now.timestamp()))]
    assert context["aws:principalarn"] == [f"arn:aws:iam::{ACCOUNT}:user/ops/bob"]
    assert context["aws:principaltag/team"] == ["red"]
    assert context["aws:principalaccount"] == [ACCOUNT]
    assert context["aws:username"] == ["x"]            # the service's keys win
    assert "aws:username" not in request_context(None)


def test_arns():
    assert arns.user(ACCOUNT, "alice") == f"arn:aws:iam::{ACCOUNT}:user/alice"
    assert arns.user(ACCOUNT, "bob", "/ops/") == f"arn:aws:iam::{ACCOUNT}:user/ops/bob"
    assert arns.iam(ACCOUNT, "group", "devs") == f"arn:aws:iam::{ACCOUNT}:group/devs"
    assert arns.root(ACCOUNT) == f"arn:aws:iam::{ACCOUNT}:root"
    assert arns.ec2("r", ACCOUNT, "volume", "vol-1") == f"arn:aws:ec2:r:{ACCOUNT}:volume/vol-1"
    assert arns.s3("b") == "arn:aws:s3:::b" and arns.s3("b", "k/x") == "arn:aws:s3:::b/k/x"
    assert arns.account_of(arns.ec2("r", ACCOUNT, "instance", "i-1")) == ACCOUNT
    assert arns.account_of(arns.s3("b")) == ""


# --- documents: IAM's rules and messages ----------------------------------------------

def iam_error(document, grammar=IAM_MANAGED) -> AwsError:
    text = document if isinstance(document, str) else json.dumps(document)
    error = check(text, grammar)
    assert error is not None, "accepted"
    return error


def doc(*statements, **top):
    return {"Version": "2012-10-17", "Statement": list(statements), **top}


@pytest.mark.parametrize("document, message", [
    ("{not json", "Syntax errors in policy."),
    ("[]", "Syntax errors in policy."),
    ({"Statement": [allow()]}, "Policy document must be version 2012-10-17 or greater."),
    ({"Version": "2008-10-17", "Statement": [allow()]},
     "Policy document must be version 2012-10-17 or greater."),
    ({"Version": "2013-01-01", "Statement": [allow()]}, "Syntax errors in policy."),
    (doc(allow(), Extra=1), "Syntax errors in policy."),
    ({"Version": "2012-10-17"}, "Syntax errors in policy."),
    (doc(), "Syntax errors in policy."),
    (doc({"Effect": "Allow", "Resource": "*"}), "Policy statement must contain actions."),
    (doc(allow(action=[])), "Policy statement must contain actions."),
    (doc({"Effect": "Allow", "Action": "*"}), "Policy statement must contain resources."),
    (doc(allow(Principal="*")), "Policy document should not specify a principal."),
    (doc(allow(NotAction="ec2:*")), "Syntax errors in policy."),
    (doc({"Action": "*", "Resource": "*"}), "Syntax errors in policy."),
    (doc(allow(Sid="a"), allow(Sid="a")),
     "Statement IDs (SID) in a single policy must be unique."),
    (doc(allow(action="CreateUser")),
     "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (doc(allow(action="iam:a:b")), "Actions/Condition can contain only one colon."),
    (doc(allow(action="i am:CreateUser")), "Vendor i am is not valid"),
    (doc(allow(resource="photos")), 'Resource photos must be in ARN format or "*".'),
    (doc(allow(resource="arn:aws-cn:s3:::x")),
     'Partition "aws-cn" is not valid for resource "arn:aws-cn:s3:::x".'),
    (doc(allow(Condition={"StringEqualz": {"aws:username": "a"}})),
     "Syntax errors in policy."),
    (doc(allow(Condition={"StringEquals": {"username": "a"}})),
     "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
    (doc(allow(Condition={"DateLessThan": {"aws:CurrentTime": "soon"}})),
     "The policy failed legacy parsing"),
    (doc(allow(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.300"}})),
     "The policy failed legacy parsing"),
])
def test_malformed_identity_policies(document, message):
    error = iam_error(document)
    assert (error.code, error.status, error.message) == ("MalformedPolicyDocument", 400,
                                                         message)


def test_size_limits_per_kind_ignore_whitespace():
    statement = allow("ec2:DescribeInstances", "*", Sid="x" * 2000)
    text = json.dumps(doc(statement), indent=8)
    assert len(text) > 2048
    assert check(text, IAM_MANAGED) is None
    big = json.dumps(doc(statement, allow("iam:GetUser", "*", Sid="y" * 200)))
    error = iam_error(big, IAM_INLINE_USER)
    assert (error.code, error.message) == ("LimitExceeded",
                                           "Cannot exceed quota for PolicySize: 2048")
    assert check(big, IAM_MANAGED) is None


def test_resource_policies_need_a_principal():
    error = iam_error(doc(allow()), IAM_TRUST)
    assert error.message == "Missing required field Principal"
    assert check(json.dumps(doc({"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                                 "Action": "sts:AssumeRole"})), IAM_TRUST) is None
    bad = iam_error(doc({"Effect": "Allow", "Principal": {"AWS": "nobody"},
                         "Action": "sts:AssumeRole"}), IAM_TRUST)
    assert bad.message == "Invalid principal in policy: nobody"


def _trust(principal, **extra):
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}]})


def test_trust_and_bucket_policies_name_roles_and_sessions():
    from eucalite.s3.policy import parse_policy
    role = f"arn:aws:iam::{ACCOUNT}:role/ops/deployer"
    session = f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/ci-run"
    (statement,) = parse(_trust({"AWS": [role, session], "Service": "ec2.amazonaws.com"}),
                         IAM_TRUST).statements
    assert statement.principals == (("role", ACCOUNT, "deployer"),
                                    ("session", ACCOUNT, "deployer", "ci-run"),
                                    ("service", "ec2.amazonaws.com"))
    (statement,) = parse_policy(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": [role, session]}, "Action": "s3:GetObject",
         "Resource": "arn:aws:s3:::photos/*"}]}), "photos").statements
    assert statement.principals == (("role", ACCOUNT, "deployer"),
                                    ("session", ACCOUNT, "deployer", "ci-run"))
    exists = {f"arn:aws:iam::{ACCOUNT}:role/deployer"}.__contains__
    assert parse(_trust({"AWS": session}), IAM_TRUST, principal_exists=exists)
    with pytest.raises(AwsError) as unknown:
        parse(_trust({"AWS": f"arn:aws:iam::{ACCOUNT}:role/gone"}), IAM_TRUST,
              principal_exists=exists)
    assert unknown.value.message == \
        f"Invalid principal in policy: arn:aws:iam::{ACCOUNT}:role/gone"


@pytest.mark.parametrize("statement, message", [
    ({"Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole", "Resource": "*"},
     "Has prohibited field Resource"),
    ({"Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole", "NotResource": "photos"},
     "Has prohibited field NotResource"),
    ({"Principal": {"AWS": ACCOUNT}, "Action": "s3:GetObject"},
     "AssumeRole policy may only specify STS AssumeRole actions."),
    ({"Principal": {"AWS": ACCOUNT}, "Action": ["sts:AssumeRole", "iam:*"]},
     "AssumeRole policy may only specify STS AssumeRole actions."),
    ({"Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:role/*"}, "Action": "sts:AssumeRole"},
     f"Invalid principal in policy: arn:aws:iam::{ACCOUNT}:role/*"),
    ({"Principal": {"Federated": "cognito-identity.amazonaws.com"},
      "Action": "sts:AssumeRole"},
     "Invalid principal in policy: cognito-identity.amazonaws.com"),
])
def test_malformed_trust_policies(statement, message):
    error = iam_error(json.dumps({"Version": "2012-10-17",
                                  "Statement": [{"Effect": "Allow", **statement}]}), IAM_TRUST)
    assert (error.code, error.message) == ("MalformedPolicyDocument", message)


def test_trust_accepts_sts_wildcards_and_session_actions():
    for action in ("sts:*", "*", "sts:Assume*", ["sts:AssumeRole", "sts:TagSession"]):
        assert check(_trust({"AWS": ACCOUNT}, Action=action), IAM_TRUST) is None, action


def test_parsed_identity_policy_shape():
    parsed = parse(json.dumps(doc(
        {"Sid": "One", "Effect": "Deny", "NotAction": ["ec2:Describe*", "s3:List*"],
         "NotResource": "arn:aws:s3:::public/*",
         "Condition": {"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": "x*"}}})),
        IAM_INLINE_USER)
    (statement,) = parsed.statements
    assert (statement.sid, statement.effect, statement.principals) == ("One", "Deny", None)
    assert statement.not_actions == ("ec2:Describe*", "s3:List*")
    assert statement.not_resources == ("arn:aws:s3:::public/*",)
    (condition,) = statement.conditions
    assert (condition.qualifier, condition.base, condition.if_exists, condition.key) == (
        "ForAnyValue", "StringLike", True, "aws:tagkeys")
