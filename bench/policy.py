#!/usr/bin/env python3
"""Benchmark: the policy engine's cost per request, in process, by how many policies the
caller has attached.

For 0 (a request with no policy: the implicit deny), 1, 10 and 100 attached identity
policies of 10 statements each (parsed once, as the service caches them), one request
is authorised again and again: :func:`eucalite.policy.evaluation.request_context` (the
caller's and the clock's keys plus the request's) and
:func:`eucalite.policy.evaluation.authorize`, which reads every statement (the request is
allowed by the last policy, and no statement denies it, so nothing stops early). The
statements mix what real policies hold: wildcard actions of EC2, S3 and IAM, ARNs with
``${aws:username}``, NotAction/NotResource, and conditions (StringEquals, StringLike on
``ec2:ResourceTag/...``, IpAddress on ``aws:SourceIp``, DateLessThan on
``aws:CurrentTime``, Bool, ForAnyValue on ``aws:TagKeys``, ...IfExists).

Prints µs per request (p50, p95, mean) for each count.

Then, through a real ``eucalite serve --no-node`` (``--live-requests`` each, one at a time,
boto3; each pair measured in the same run as its baseline):

* S3 GET of a 4 KiB object by the bucket owner's root, with no bucket policy and with a
  20-statement one (every statement read: none decides the request);
* EC2 DescribeInstances as the account's root (no policy is loaded) and as a user with 5
  attached managed policies of 10 statements (CreatePolicy, AttachUserPolicy; the last
  one allows it): the user's policies are loaded once per request and evaluated.

    python bench/policy.py [--requests 2000] [--live-requests 500] [--no-live]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eucalite.policy import arns  # noqa: E402
from eucalite.policy.document import parse  # noqa: E402
from eucalite.policy.evaluation import Caller, authorize, request_context  # noqa: E402
from eucalite.policy.grammar import IAM_MANAGED  # noqa: E402

from common import describe, timed  # noqa: E402 - bench/common.py (run as bench/<script>.py)

ACCOUNT = "111111111111"
CALLER = Caller(ACCOUNT, "alice", "AIDAALICE", tags={"team": "blue"})
ACTION = "ec2:TerminateInstances"
RESOURCE = arns.ec2("eucalyptus", ACCOUNT, "instance", "i-0123abcd")
KEYS = {"aws:SourceIp": "10.1.2.3", "aws:SecureTransport": False,
        "ec2:ResourceTag/owner": "alice", "ec2:ResourceTag/env": "dev"}

#: Ten statements, none of which allows or denies the benchmark's request; each policy
#: holds these (with its number in the Sids) so every statement is read.
FILLER = [
    {"Effect": "Allow", "Action": ["ec2:Describe*", "ec2:Get*"], "Resource": "*"},
    {"Effect": "Allow", "Action": "s3:*",
     "Resource": "arn:aws:s3:::home/${aws:username}/*"},
    {"Effect": "Deny", "Action": "iam:*", "Resource": "*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}}},
    {"Effect": "Allow", "Action": "ec2:*Volume*",
     "Resource": f"arn:aws:ec2:*:{ACCOUNT}:volume/*",
     "Condition": {"StringEquals": {"ec2:ResourceTag/owner": "${aws:username}"}}},
    {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*",
     "Condition": {"StringLike": {"ec2:ResourceTag/env": "prod*"}}},
    {"Effect": "Allow", "NotAction": ["ec2:*", "s3:*", "iam:*"], "Resource": "*"},
    {"Effect": "Deny", "Action": "ec2:*", "Resource": "*",
     "Condition": {"DateLessThan": {"aws:CurrentTime": "2001-01-01T00:00:00Z"}}},
    {"Effect": "Allow", "Action": "iam:*AccessKey*",
     "Resource": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"},
    {"Effect": "Deny", "Action": "ec2:*", "NotResource": f"arn:aws:ec2:*:{ACCOUNT}:*",
     "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
    {"Effect": "Deny", "Action": "ec2:RunInstances", "Resource": "*",
     "Condition": {"ForAnyValue:StringEquals": {"aws:TagKeys": ["secret", "billing"]},
                   "StringNotEqualsIfExists": {"aws:RequestTag/team":
                                               "${aws:PrincipalTag/team}"}}},
]
GRANT = {"Effect": "Allow", "Action": "ec2:TerminateInstances",
         "Resource": f"arn:aws:ec2:*:{ACCOUNT}:instance/*",
         "Condition": {"StringEquals": {"ec2:ResourceTag/owner": "${aws:username}"},
                       "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}


def policies(count: int) -> list:
    """*count* policies of 10 statements; the last one's last statement grants."""
    made = []
    for number in range(count):
        statements = [dict(s, Sid=f"P{number}S{index}") for index, s in enumerate(FILLER)]
        if number == count - 1:
            statements[-1] = dict(GRANT, Sid=f"P{number}Grant")
        made.append((f"policy-{number}", parse(json.dumps(
            {"Version": "2012-10-17", "Statement": statements}), IAM_MANAGED)))
    return made


def measure(count: int, requests: int) -> list[float]:
    attached = policies(count)
    expected = "Allow" if count else "ImplicitDeny"
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        decision = authorize(CALLER, ACTION, RESOURCE, identity=attached,
                             context=request_context(CALLER, KEYS))
        samples.append(time.perf_counter() - start)
        assert decision.effect == expected, decision
    return samples


def pct(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# --- through a live server ----------------------------------------------------------------

def bucket_policy(bucket: str) -> str:
    """20 statements about *bucket*, none of which allows or denies its owner's GET."""
    statements = []
    for number in range(20):
        kind = number % 4
        if kind == 0:
            statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                         "Resource": f"arn:aws:s3:::{bucket}/secret-{number}/*"}
        elif kind == 1:
            statement = {"Effect": "Allow", "Principal": {"AWS": f"{number:012d}"},
                         "Action": ["s3:GetObject", "s3:ListBucket"],
                         "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}
        elif kind == 2:
            statement = {"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                         "Resource": f"arn:aws:s3:::{bucket}/*",
                         "Condition": {"IpAddress": {"aws:SourceIp": f"10.{number}.0.0/16"}}}
        else:
            statement = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                         "Resource": f"arn:aws:s3:::{bucket}/public/*",
                         "Condition": {"StringLike": {"aws:UserAgent": f"*bot-{number}*"}}}
        statements.append(dict(statement, Sid=f"S{number}"))
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def live(count: int) -> None:
    import shutil
    import tempfile

    import boto3
    from botocore.config import Config

    from common import serve_subprocess, unwind_on_signals  # bench/common.py

    def client(service: str, key: str, secret: str):
        return boto3.session.Session().client(
            service, endpoint_url=env[f"AWS_ENDPOINT_URL_{service.upper()}"],
            region_name=env["AWS_DEFAULT_REGION"], aws_access_key_id=key,
            aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))

    unwind_on_signals()
    data_dir = tempfile.mkdtemp(prefix="eucalite-bench-policy-")
    process = None
    try:
        process, _, env = serve_subprocess(data_dir, str(Path(data_dir) / "serve.log"))
        root = (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
        s3, iam, ec2 = client("s3", *root), client("iam", *root), client("ec2", *root)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="obj", Body=b"x" * 4096)

        def get():
            assert len(s3.get_object(Bucket="bench", Key="obj")["Body"].read()) == 4096

        plain = timed(get, count, warm=20)
        s3.put_bucket_policy(Bucket="bench", Policy=bucket_policy("bench"))
        with_policy = timed(get, count, warm=20)

        iam.create_user(UserName="dev")
        for number in range(5):
            statements = [dict(s, Sid=f"P{number}S{index}") for index, s in enumerate(FILLER)]
            if number == 4:
                statements[-1] = {"Sid": "Grant", "Effect": "Allow",
                                  "Action": "ec2:DescribeInstances", "Resource": "*"}
            document = json.dumps({"Version": "2012-10-17", "Statement": statements})
            arn = iam.create_policy(PolicyName=f"p{number}",
                                    PolicyDocument=document)["Policy"]["Arn"]
            iam.attach_user_policy(UserName="dev", PolicyArn=arn)
        key = iam.create_access_key(UserName="dev")["AccessKey"]
        user_ec2 = client("ec2", key["AccessKeyId"], key["SecretAccessKey"])
        as_root = timed(ec2.describe_instances, count, warm=20)
        as_user = timed(user_ec2.describe_instances, count, warm=20)

        print(f"through eucalite serve ({count} requests each, one at a time)")
        print(f"  {'S3 GET 4 KiB, no bucket policy':44s} {describe(plain)}")
        print(f"  {'S3 GET 4 KiB, 20-statement bucket policy':44s} {describe(with_policy)}")
        print(f"  {'EC2 DescribeInstances, account root':44s} {describe(as_root)}")
        print(f"  {'EC2 DescribeInstances, user with 5 policies':44s} {describe(as_user)}")
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--live-requests", type=int, default=500)
    parser.add_argument("--no-live", action="store_true", help="the in-process part only")
    args = parser.parse_args()
    measure(10, 200)                     # warm the pattern caches and the interpreter
    print(f"policy engine, one request authorised in process ({args.requests} requests "
          f"each; 10 statements per policy)")
    print(f"{'policies':>9}{'statements':>12}{'p50 µs':>10}{'p95 µs':>10}{'mean µs':>10}")
    for count in (0, 1, 10, 100):
        samples = measure(count, args.requests)
        print(f"{count:>9}{count * 10:>12}{pct(samples, 0.5) * 1e6:>10.1f}"
              f"{pct(samples, 0.95) * 1e6:>10.1f}{statistics.fmean(samples) * 1e6:>10.1f}")
    if not args.no_live:
        live(args.live_requests)


if __name__ == "__main__":
    main()
