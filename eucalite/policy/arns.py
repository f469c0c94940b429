"""This cloud's ARNs, in one place: what policies name as Resource and Principal.

Every service builds the ARN of what a request touches here, so a policy written for AWS
(``arn:aws:ec2:<region>:<account>:instance/i-...``, ``arn:aws:s3:::bucket/key``,
``arn:aws:iam::<account>:user/<path><name>``) names the same thing in eucalite.
"""
from __future__ import annotations

PARTITION = "aws"


def _path(path: str) -> str:
    """IAM paths start and end with ``/``; the ARN holds the path without its first one."""
    return path.strip("/") + "/" if path.strip("/") else ""


def root(account_id: str) -> str:
    return f"arn:{PARTITION}:iam::{account_id}:root"


def user(account_id: str, name: str, path: str = "/") -> str:
    return f"arn:{PARTITION}:iam::{account_id}:user/{_path(path)}{name}"


def iam(account_id: str, kind: str, name: str, path: str = "/") -> str:
    """An IAM entity: *kind* ``user``, ``group``, ``role``, ``policy``,
    ``instance-profile``."""
    return f"arn:{PARTITION}:iam::{account_id}:{kind}/{_path(path)}{name}"


def ec2(region: str, account_id: str, kind: str, resource_id: str) -> str:
    """An EC2 resource: *kind* ``instance``, ``volume``, ``security-group``, ``key-pair``,
    ``snapshot``, ``elastic-ip``, ...; images and snapshots owned by the cloud give no
    account (pass ``""``), as AWS's public images do."""
    return f"arn:{PARTITION}:ec2:{region}:{account_id}:{kind}/{resource_id}"


def s3(bucket: str, key: str | None = None) -> str:
    """A bucket (*key* None) or an object in it; S3 ARNs carry no region or account."""
    return f"arn:{PARTITION}:s3:::{bucket}" if key is None else \
        f"arn:{PARTITION}:s3:::{bucket}/{key}"


def account_of(arn: str) -> str:
    """The account field of *arn* (``""`` for S3's, which have none)."""
    parts = arn.split(":", 5)
    return parts[4] if len(parts) > 4 else ""
