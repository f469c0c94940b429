#!/usr/bin/env python3
"""Benchmark: STS through a real `eucalite serve`: AssumeRole's latency, and what a session
key costs a signed request beside a long-term key.

Starts `eucalite serve --no-node` on loopback, creates a role trusting the account (IAM
CreateRole), then times with boto3, one request at a time:

* AssumeRole (trust policy checked, a session row written);
* DescribeRegions signed by a user with one inline policy, with its long-term key, then
  with a GetSessionToken session of the same user (same policies: the difference is the
  token lookup, one joined query on ``sts_sessions`` in place of ``access_keys``);
* DescribeRegions signed with an AssumeRole session (the role's policies instead).

Then, in process (no HTTP, no policy): :func:`eucalite.auth.authenticate` of the same
signed DescribeRegions with each key, the signature check alone, so the token lookup's
own cost shows apart from the role's policy evaluation.

Prints p50 / p95 in ms and requests per second for each.

    python bench/sts.py [--requests 400]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import boto3
from botocore.config import Config

from common import describe, serve_subprocess, timed, unwind_on_signals  # bench/common.py

ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}]})


def client(service: str, endpoint: str, region: str, key: str, secret: str,
           token: str | None = None):
    return boto3.session.Session().client(
        service, endpoint_url=endpoint, region_name=region, aws_access_key_id=key,
        aws_secret_access_key=secret, aws_session_token=token,
        config=Config(retries={"max_attempts": 1}))


def verification(count: int) -> None:
    """authenticate() of one signed DescribeRegions, long-term key beside session key."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from eucalite import accounts, create_app, ids, sessions
    from eucalite.auth import RequestView, authenticate
    from eucalite.db import db
    from eucalite.identity import Role

    data_dir = tempfile.mkdtemp(prefix="eucalite-bench-sts-auth-")
    try:
        app = create_app({"data_dir": data_dir, "node": False})
        with app.app_context():
            key = accounts.first_active_key(accounts.ADMIN_ACCOUNT, accounts.ADMIN_USER)
            account_id = accounts.get_account(accounts.ADMIN_ACCOUNT).id
            role = Role(id=ids.unique_id("AROA"), account_id=account_id, name="bench",
                        trust_policy="{}")
            db.session.add(role)
            db.session.commit()
            session = sessions.mint(account_id, 3600, role_id=role.id, session_name="bench")
            body = b"Action=DescribeRegions&Version=2016-11-15"

            def view_for(credentials: Credentials) -> RequestView:
                request = AWSRequest(method="POST", url="http://127.0.0.1:8773/services/compute",
                                     data=body, headers={"Content-Type":
                                                         "application/x-www-form-urlencoded"})
                botocore.auth.SigV4Auth(credentials, "ec2", "eucalyptus").add_auth(request)
                headers = {k.lower(): v for k, v in request.headers.items()}
                headers["host"] = "127.0.0.1:8773"
                return RequestView("POST", "/services/compute", "", headers, [])

            plain = view_for(Credentials(key.id, key.secret))
            temporary = view_for(Credentials(session.access_key_id, session.secret,
                                             session.token))
            for name, view in (("long-term key", plain), ("session key + token", temporary)):
                samples = timed(lambda: authenticate(view, "ec2", body=body), count)
                print(f"  {'authenticate(), ' + name:40s} {describe(samples)}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    unwind_on_signals()
    data_dir = tempfile.mkdtemp(prefix="eucalite-bench-sts-")
    process = None
    try:
        process, _, env = serve_subprocess(data_dir, str(Path(data_dir) / "serve.log"))
        region, key, secret = (env["AWS_DEFAULT_REGION"], env["AWS_ACCESS_KEY_ID"],
                               env["AWS_SECRET_ACCESS_KEY"])
        iam = client("iam", env["AWS_ENDPOINT_URL_IAM"], region, key, secret)
        sts = client("sts", env["AWS_ENDPOINT_URL_STS"], region, key, secret)
        account = sts.get_caller_identity()["Account"]
        role_arn = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": account},
                 "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
        iam.put_role_policy(RoleName="bench", PolicyName="describe", PolicyDocument=ALL)

        assume = timed(lambda: sts.assume_role(RoleArn=role_arn, RoleSessionName="bench"),
                       args.requests)
        ec2_url = env["AWS_ENDPOINT_URL_EC2"]
        iam.create_user(UserName="bench")
        iam.put_user_policy(UserName="bench", PolicyName="describe", PolicyDocument=ALL)
        user_key = iam.create_access_key(UserName="bench")["AccessKey"]
        user = (user_key["AccessKeyId"], user_key["SecretAccessKey"])
        own = client("sts", env["AWS_ENDPOINT_URL_STS"], region, *user).get_session_token(
            DurationSeconds=3600)["Credentials"]
        role = sts.assume_role(RoleArn=role_arn, RoleSessionName="bench")["Credentials"]
        rows = [("DescribeRegions, user's long-term key", client("ec2", ec2_url, region, *user)),
                ("DescribeRegions, user's session + token",
                 client("ec2", ec2_url, region, own["AccessKeyId"], own["SecretAccessKey"],
                        own["SessionToken"])),
                ("DescribeRegions, role session + token",
                 client("ec2", ec2_url, region, role["AccessKeyId"], role["SecretAccessKey"],
                        role["SessionToken"]))]
        print(f"{args.requests} requests each, one at a time")
        print(f"  {'AssumeRole':40s} {describe(assume)}")
        for name, ec2 in rows:
            print(f"  {name:40s} {describe(timed(ec2.describe_regions, args.requests))}")
        verification(args.requests * 5)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
