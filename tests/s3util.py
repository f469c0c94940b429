"""Helpers shared by the S3 HTTP tests: second accounts and anonymous requests."""
from __future__ import annotations

import requests

from eucalite import accounts


def new_account(live, name: str = "other") -> tuple[str, str, str]:
    """Create account *name* with an admin key: (account id, key id, secret)."""
    with live.app.app_context():
        account = accounts.create_account(name)
        key = accounts.create_access_key(name, "admin")
        return account.id, key.id, key.secret


def second_account(live, name: str = "other", service: str = "s3"):
    """A boto3 client for the admin of a new account, and that account's id."""
    account_id, key_id, secret = new_account(live, name)
    return live.client(service, key_id=key_id, secret=secret), account_id


def anonymous(method: str, live, path: str, **kwargs) -> requests.Response:
    return requests.request(method, live.base_url + path, **kwargs)


def acl_bucket(client, name: str) -> None:
    """Create bucket *name* the way an AWS user makes one for ACLs and public access since
    AWS's April 2023 defaults: ACLs enabled (ObjectWriter) and Block Public Access off."""
    client.create_bucket(Bucket=name, ObjectOwnership="ObjectWriter")
    client.delete_public_access_block(Bucket=name)


def policy_user(live, name: str):
    """An IAM user *name* of the admin account: (its S3 client, grant) where
    ``grant(actions)`` replaces the user's one inline policy with an Allow of *actions* on
    every resource."""
    import json

    iam = live.client("iam")
    iam.create_user(UserName=name)

    def grant(actions: list[str]) -> None:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions,
                                                    "Resource": "*"}]}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return live.client("s3", key_id=key["AccessKeyId"], secret=key["SecretAccessKey"]), grant
