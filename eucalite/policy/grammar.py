"""What a policy document may say, per kind of policy, and what the client is told when it
says something else.

One parser (:mod:`eucalite.policy.document`) reads every policy; a :class:`Grammar` holds
what differs between kinds: whether a Principal is required or forbidden, the size limit,
which versions and action and condition-key services are accepted, and the error class and
messages (IAM answers ``MalformedPolicyDocument`` with its own sentences, S3 answers
``MalformedPolicy`` with others). The parser raises :class:`Malformed` with a *reason*; the
grammar turns it into the client's error with :meth:`Grammar.error_for`.

IAM's grammars are here (``IAM_INLINE_USER``, ``IAM_MANAGED``, ...); S3 defines its
bucket-policy grammar beside its other rules (:mod:`eucalite.s3.policy`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ..errors import AwsError
from ..errors.iam import LimitExceeded, MalformedPolicyDocument

VERSION_2008, VERSION_2012 = "2008-10-17", "2012-10-17"


class Malformed(Exception):
    """The document breaks a rule: *reason* names the rule, *args* fill its message."""

    def __init__(self, reason: str, **args: Any):
        super().__init__(reason)
        self.reason = reason
        self.args_ = args


@dataclass(frozen=True)
class Grammar:
    """The rules of one kind of policy document.

    *principal* is ``"required"`` (resource and trust policies) or ``"forbidden"``
    (identity policies). *max_size* counts the document's characters once its whitespace
    outside strings is gone. *action_services* makes it a service's own policy: actions of
    those services only, one sentence for a bad action or resource, and the service's
    resource rules left to *check_statement* (None: IAM's rules, any vendor, ARNs).
    *condition_key* is the pattern a condition key must match.
    *min_version* is the oldest Version accepted; *default_version* is assumed when the
    document has none (None: Version is required). *canonical_id* says whether a text is
    a canonical user id (None: CanonicalUser principals are refused). *role_principals*
    accepts role ARNs and role-session ARNs as AWS principals. *prohibited_fields* are
    statement fields this kind refuses before looking at them. *check_statement*
    runs on each parsed statement for rules only one service has.
    """

    name: str
    error: type[AwsError]
    # Not compared: a dict cannot be hashed, and grammars key caches of parsed documents
    # (identity._parsed); the name tells grammars apart.
    messages: Mapping[str, str] = field(compare=False)
    max_size: int
    principal: str = "forbidden"
    size_error: type[AwsError] | None = None
    action_services: tuple[str, ...] | None = None
    condition_key: re.Pattern[str] = re.compile(r"^[A-Za-z0-9-]+:\S+\Z")
    min_version: str = VERSION_2008
    default_version: str | None = VERSION_2008
    requires_resource: bool = True
    canonical_id: Callable[[str], bool] | None = None
    role_principals: bool = False
    prohibited_fields: tuple[str, ...] = ()
    check_statement: Callable[[Any], None] | None = field(default=None, compare=False)
    #: accepts Eucalyptus' ``"Effect": "Limit"`` quota statements (:data:`QUOTA_KEYS`)
    limits: bool = False

    def error_for(self, malformed: Malformed) -> AwsError:
        """The client's error for *malformed*: the grammar's message for its reason (the
        generic ``syntax`` message when the grammar has none for it)."""
        template = self.messages.get(malformed.reason, self.messages["syntax"])
        error = self.size_error if malformed.reason == "size" and self.size_error else \
            self.error
        return error(template.format(limit=self.max_size, **malformed.args_))


#: IAM's sentences (what IAM answers for each broken rule); anything not named gets
#: "Syntax errors in policy.", IAM's answer to most structural mistakes.
IAM_MESSAGES: Mapping[str, str] = {
    "syntax": "Syntax errors in policy.",
    "size": "Cannot exceed quota for PolicySize: {limit}",
    "old_version": "Policy document must be version 2012-10-17 or greater.",
    "legacy": "The policy failed legacy parsing",
    "condition_value": "The policy failed legacy parsing",
    "condition_ip": "The policy failed legacy parsing",
    "sid_unique": "Statement IDs (SID) in a single policy must be unique.",
    "missing_action": "Policy statement must contain actions.",
    "missing_resource": "Policy statement must contain resources.",
    "missing_principal": "Missing required field Principal",
    "principal_forbidden": "Policy document should not specify a principal.",
    "principal": "Invalid principal in policy: {principal}",
    "condition_key": "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, "
                     "etc.",
    "action_vendor": "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, "
                     "etc.",
    "action_colon": "Actions/Condition can contain only one colon.",
    "action_vendor_invalid": "Vendor {vendor} is not valid",
    "resource_arn": 'Resource {resource} must be in ARN format or "*".',
    "resource_partition": 'Partition "{partition}" is not valid for resource "{resource}".',
    "limit": "Limit statements take only quota keys (ec2:quota-..., s3:quota-..., "
             "iam:quota-...) under NumericLessThanEquals with a whole number: {key}",
}


# --- quotas ---------------------------------------------------------------------------
# Eucalyptus' quotas are statements with Effect "Limit": their Action and Resource say
# which requests they count against, their one operator NumericLessThanEquals gives the
# limit per quota key. They grant nothing: the engine skips them when deciding access.

#: The quota keys (lower-case, as conditions keep them) and the unit of each.
QUOTA_KEYS: Mapping[str, str] = {
    "ec2:quota-vminstancenumber": "instances",
    "ec2:quota-cputotalsize": "vCPUs",
    "ec2:quota-memorytotalsize": "MiB",
    "ec2:quota-disktotalsize": "GiB",
    "ec2:quota-imagenumber": "images",
    "ec2:quota-volumenumber": "volumes",
    "ec2:quota-volumetotalsize": "GiB",
    "ec2:quota-snapshotnumber": "snapshots",
    "ec2:quota-addressnumber": "addresses",
    "s3:quota-bucketnumber": "buckets",
    "s3:quota-bucketsize": "MB per bucket",
    "s3:quota-buckettotalsize": "MB",
    "s3:quota-bucketobjectnumber": "objects per bucket",
    "iam:quota-usernumber": "users",
    "iam:quota-groupnumber": "groups",
    "iam:quota-rolenumber": "roles",
    "iam:quota-instanceprofilenumber": "instance profiles",
}
LIMIT_OPERATOR = "NumericLessThanEquals"


def check_limit_statement(statement: Any) -> None:
    """Malformed unless every condition of a Limit *statement* is a quota key under
    NumericLessThanEquals (no qualifier, no IfExists) with one whole number >= 0, and it
    has at least one."""
    if not statement.conditions:
        raise Malformed("limit", key="no quota key")
    for condition in statement.conditions:
        if (condition.operator != LIMIT_OPERATOR or condition.key not in QUOTA_KEYS
                or len(condition.values) != 1 or not condition.values[0].isdigit()):
            raise Malformed("limit", key=condition.key)


def _iam(name: str, max_size: int, **rules: Any) -> Grammar:
    return Grammar(name=name, error=MalformedPolicyDocument, messages=IAM_MESSAGES,
                   max_size=max_size, size_error=LimitExceeded, min_version=VERSION_2012,
                   default_version=None, **rules)


#: IAM's limits on a policy's size (characters without whitespace), per kind.
# Users take quotas (an account's are its admin user's); a group's are accepted as
# Eucalyptus accepted them and count for nothing (quotas.py reads users only).
IAM_INLINE_USER = _iam("inline user policy", 2048, limits=True)
IAM_INLINE_GROUP = _iam("inline group policy", 5120, limits=True)
IAM_INLINE_ROLE = _iam("inline role policy", 10240)
IAM_MANAGED = _iam("managed policy", 6144)


# --- trust policies -------------------------------------------------------------------
# A role's trust policy says who may assume it: a Principal (accounts, users, roles, role
# sessions, services), STS's assume actions only, and no Resource (the role is the
# resource).

#: The actions a trust policy may name (lower-case); a wildcard must match one of them.
TRUST_ACTIONS = ("sts:assumerole", "sts:assumerolewithsaml", "sts:assumerolewithwebidentity",
                 "sts:tagsession", "sts:setsourceidentity", "sts:setcontext")

TRUST_MESSAGES: Mapping[str, str] = {
    **IAM_MESSAGES,
    "prohibited": "Has prohibited field {name}",
    "trust_action": "AssumeRole policy may only specify STS AssumeRole actions.",
}


def _check_trust_statement(statement: Any) -> None:
    for action in statement.actions or statement.not_actions or ():
        pattern = re.compile(re.escape(action.lower()).replace(r"\*", ".*")
                             .replace(r"\?", "."))
        if not any(pattern.fullmatch(name) for name in TRUST_ACTIONS):
            raise Malformed("trust_action")


IAM_TRUST = Grammar(name="trust policy", error=MalformedPolicyDocument,
                    messages=TRUST_MESSAGES, max_size=2048, size_error=LimitExceeded,
                    principal="required", requires_resource=False, role_principals=True,
                    prohibited_fields=("Resource", "NotResource"),
                    check_statement=_check_trust_statement)
