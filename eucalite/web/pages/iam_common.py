"""What the console's IAM pages share: the IAM service, the gate's answer for an IAM action
(the console offers only what the signed-in user may do; the service refuses the rest
anyway), the policy kinds the JSON editor validates, and the entity kinds (user, group,
role) that hold policies. No routes: the IAM page modules register those."""
from __future__ import annotations

from flask import render_template

from ... import access
from ...api import services
from ...db import db
from ...errors import AwsError
from ...identity import AWS_ACCOUNT
from ...policy import arns, grammar
from ..session import principal

#: Editor kind -> the grammar a document of that kind is parsed with (the one the IAM
#: service parses it with on saving).
GRAMMARS = {"user": grammar.IAM_INLINE_USER, "group": grammar.IAM_INLINE_GROUP,
            "role": grammar.IAM_INLINE_ROLE, "managed": grammar.IAM_MANAGED,
            "trust": grammar.IAM_TRUST}
ENTITY_KINDS = ("user", "group", "role")

#: A starting document for a new policy (the editor's placeholder).
EXAMPLE = ('{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n      "Effect": "Allow",\n'
           '      "Action": "ec2:DescribeInstances",\n      "Resource": "*"\n    }\n  ]\n}')
EXAMPLE_TRUST = ('{\n  "Version": "2012-10-17",\n  "Statement": [\n    {\n'
                 '      "Effect": "Allow",\n      "Principal": {"Service": "ec2.amazonaws.com"},\n'
                 '      "Action": "sts:AssumeRole"\n    }\n  ]\n}')


def iam():
    """The IAM service every IAM page calls."""
    return services().iam


def may(action: str, resource: str = "*") -> bool:
    """Would ``iam:<action>`` on *resource* be allowed to the signed-in user? The same gate
    (:func:`eucalite.access.decide`) the service's own check asks."""
    return access.decide(principal(), f"iam:{action}", resource).allowed


def entity_arn(kind: str, name: str, path: str = "/") -> str:
    """The ARN of user, group or role *name* in the signed-in user's account."""
    return arns.iam(principal().account_id, kind, name, path)


def any_iam_page() -> bool:
    """Whether the signed-in user may list anything IAM shows (the IAM nav entries)."""
    return any(may(action) for action in ("ListUsers", "ListGroups", "ListRoles",
                                          "ListPolicies"))


def policy_arn(policy) -> str:
    """A managed policy's ARN (AWS's own are in account ``aws``), as IAM names it."""
    return arns.iam(policy.account_id or AWS_ACCOUNT, "policy", policy.name, policy.path)


def refused(error: AwsError):
    """The service's refusal (AccessDenied, NoSuchEntity, ...) as the console's error page,
    with its code, message and status."""
    db.session.rollback()
    return render_template("console/error.html", code=error.code,
                           message=error.message), error.status
