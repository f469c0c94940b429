"""AWS's managed policies that eucalite offers (``arn:aws:iam::aws:policy/<Name>``): a
useful handful, with short documents that grant what AWS's do for the services eucalite has
(EC2, S3, IAM). Every account sees and may attach them; none may change or delete them.

:func:`seed` puts them in the database when the application starts: idempotently (each has
a fixed id), and a document changed here replaces the stored one (their single version,
v1), so an upgrade brings the new text.
"""
from __future__ import annotations

import hashlib
import json

from sqlalchemy.exc import IntegrityError

from ..db import db
from ..identity import ManagedPolicy, PolicyVersion

_ALL = "*"


def _allow(actions, not_action: bool = False) -> dict:
    return {"Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "NotAction" if not_action else "Action": actions,
                           "Resource": _ALL}]}


_READ_IAM = ["iam:GenerateCredentialReport", "iam:GenerateServiceLastAccessedDetails",
             "iam:Get*", "iam:List*", "iam:SimulateCustomPolicy",
             "iam:SimulatePrincipalPolicy"]
_READ_EC2 = ["ec2:Describe*", "elasticloadbalancing:Describe*", "cloudwatch:ListMetrics",
             "cloudwatch:GetMetricStatistics", "cloudwatch:Describe*", "autoscaling:Describe*"]
_READ_S3 = ["s3:Get*", "s3:List*", "s3:Describe*"]

#: name -> (description, document), as AWS describes each.
POLICIES: dict[str, tuple[str, dict]] = {
    "AdministratorAccess": (
        "Provides full access to AWS services and resources.", _allow("*")),
    "PowerUserAccess": (
        "Provides full access to AWS services and resources, but does not allow management "
        "of Users and groups.",
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"],
             "Resource": _ALL},
            {"Effect": "Allow", "Action": ["iam:CreateServiceLinkedRole",
                                           "iam:DeleteServiceLinkedRole", "iam:ListRoles",
                                           "organizations:DescribeOrganization",
                                           "account:ListRegions"],
             "Resource": _ALL}]}),
    "ReadOnlyAccess": (
        "Provides read-only access to AWS services and resources.",
        _allow(["ec2:Describe*", "ec2:Get*", *_READ_S3, *_READ_IAM, "sts:GetCallerIdentity",
                "elasticloadbalancing:Describe*", "cloudwatch:Describe*", "cloudwatch:Get*",
                "cloudwatch:List*", "autoscaling:Describe*"])),
    "IAMFullAccess": (
        "Provides full access to IAM via the AWS Management Console.", _allow("iam:*")),
    "IAMReadOnlyAccess": (
        "Provides read only access to IAM via the AWS Management Console.", _allow(_READ_IAM)),
    "AmazonEC2FullAccess": (
        "Provides full access to Amazon EC2 via the AWS Management Console.",
        _allow(["ec2:*", "elasticloadbalancing:*", "cloudwatch:*", "autoscaling:*"])),
    "AmazonEC2ReadOnlyAccess": (
        "Provides read only access to Amazon EC2 via the AWS Management Console.",
        _allow(_READ_EC2)),
    "AmazonS3FullAccess": (
        "Provides full access to all buckets via the AWS Management Console.",
        _allow(["s3:*", "s3-object-lambda:*"])),
    "AmazonS3ReadOnlyAccess": (
        "Provides read only access to all buckets via the AWS Management Console.",
        _allow([*_READ_S3, "s3-object-lambda:Get*", "s3-object-lambda:List*"])),
}


def policy_id(name: str) -> str:
    """The fixed id of AWS policy *name* (``ANPA`` and 17 characters, like IAM's)."""
    digest = hashlib.sha256(f"aws-managed:{name}".encode()).hexdigest().upper()
    return "ANPA" + digest[:17]


def text(name: str) -> str:
    """The stored document of AWS policy *name* (indented, as AWS shows its own)."""
    return json.dumps(POLICIES[name][1], indent=4)


def seed() -> None:
    """Make the database hold :data:`POLICIES` as they are written here (idempotent)."""
    for name, (description, _document) in POLICIES.items():
        wanted = text(name)
        policy = db.session.get(ManagedPolicy, policy_id(name))
        if policy is None:
            db.session.add(ManagedPolicy(id=policy_id(name), account_id=None, name=name,
                                         path="/", description=description,
                                         default_version="v1", next_version=2))
            db.session.flush()
            db.session.add(PolicyVersion(policy_id=policy_id(name), version_id="v1",
                                         document=wanted))
        else:
            policy.description = description
            version = db.session.get(PolicyVersion, (policy.id, "v1"))
            if version.document != wanted:
                version.document = wanted
    try:
        db.session.commit()
    except IntegrityError:          # another process seeded them at the same moment
        db.session.rollback()
