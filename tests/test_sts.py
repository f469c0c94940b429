"""STS at /services/Tokens with boto3 and the aws CLI: GetCallerIdentity for each kind of
caller, AssumeRole (trust policies, the caller's own policies, session names, durations,
role chaining), GetSessionToken, and temporary credentials in every signature check (EC2,
S3 with a presigned URL, IAM, STS; SigV4 and SigV2), refused with a wrong or missing token
and after they expire.

Roles and policies are written as records here (their IAM API has its own tests); expiry
is made testable by moving a session's expiry into the past."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import boto3
import requests
from botocore.auth import HmacV1Auth, SigV2Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from awsutil import error_code, failure, xml_error_code
from serverutil import AWS, EUCALITE, cli_env, run
from eucalite import accounts, credentials as credentials_module, ids, sessions
from eucalite.db import db
from eucalite.identity import InlinePolicy, Role, StsSession

ALL = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["ec2:*", "s3:*", "sts:*", "iam:*"], "Resource": "*"}]})


def trust(**principal) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}]})


def make_role(live, name: str, trust_policy: str, *, account: str = accounts.ADMIN_ACCOUNT,
              policy: str | None = ALL, max_seconds: int = 3600) -> str:
    """A role (and its inline policy) of *account*; returns its ARN."""
    with live.app.app_context():
        account_id = accounts.get_account(account).id
        role = Role(id=ids.unique_id("AROA"), account_id=account_id, name=name,
                    trust_policy=trust_policy, max_session_duration=max_seconds)
        db.session.add(role)
        db.session.flush()
        if policy is not None:
            db.session.add(InlinePolicy(role_id=role.id, name="all", document=policy))
        db.session.commit()
        return f"arn:aws:iam::{account_id}:role/{name}"


def make_user(live, account: str, name: str, policy: str | None = None) -> tuple[str, str, str]:
    """A user of *account* with a key (and an inline policy): (key id, secret, ARN)."""
    with live.app.app_context():
        try:
            accounts.get_account(account)
        except Exception:
            accounts.create_account(account)
        user = accounts.create_user(account, name)
        if policy is not None:
            db.session.add(InlinePolicy(user_id=user.id, name="p", document=policy))
            db.session.commit()
        key = accounts.create_access_key(account, name)
        return key.id, key.secret, f"arn:aws:iam::{user.account_id}:user/{name}"


def admin_account_id(live) -> str:
    with live.app.app_context():
        return accounts.get_account(accounts.ADMIN_ACCOUNT).id


def client(live, service: str, creds: dict | tuple, **config):
    """A boto3 client signing with *creds* (STS's Credentials dict, or (key, secret))."""
    if isinstance(creds, dict):
        key, secret, token = (creds["AccessKeyId"], creds["SecretAccessKey"],
                              creds["SessionToken"])
    else:
        (key, secret), token = creds, None
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    aws_session_token=token, region_name=live.region)
    return session.client(service, endpoint_url=live.endpoints[service],
                          config=Config(retries={"max_attempts": 1}, **config))


def sts(live, creds=None, **config):
    return client(live, "sts", creds or (live.key_id, live.secret), **config)


def expire(live, access_key_id: str) -> None:
    with live.app.app_context():
        db.session.get(StsSession, access_key_id).expires = \
            accounts.utcnow() - dt.timedelta(seconds=1)
        db.session.commit()


# --- GetCallerIdentity -------------------------------------------------------------------

def test_caller_identity_of_a_user_and_of_the_root(live):
    account_id = admin_account_id(live)
    me = sts(live).get_caller_identity()
    assert me["Account"] == account_id
    assert me["Arn"] == f"arn:aws:iam::{account_id}:user/admin"
    assert me["UserId"].startswith("AIDA")
    key, secret, arn = make_user(live, "team", "dev")
    other = sts(live, (key, secret)).get_caller_identity()      # no policy needed
    assert other["Arn"] == arn and other["Account"] != account_id


# --- AssumeRole ---------------------------------------------------------------------------

def test_assume_role_gives_working_credentials_everywhere(live):
    account_id = admin_account_id(live)
    role_arn = make_role(live, "worker", trust(AWS=account_id))
    answer = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="job-1",
                                   DurationSeconds=900)
    creds = answer["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SessionToken"]) > 100
    left = creds["Expiration"] - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(seconds=800) < left <= dt.timedelta(seconds=900)
    user = answer["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{account_id}:assumed-role/worker/job-1"
    assert user["AssumedRoleId"].startswith("AROA") and user["AssumedRoleId"].endswith(":job-1")

    me = sts(live, creds).get_caller_identity()
    assert (me["Arn"], me["UserId"], me["Account"]) == (user["Arn"], user["AssumedRoleId"],
                                                         account_id)
    client(live, "ec2", creds).describe_instances()
    s3 = client(live, "s3", creds)
    s3.create_bucket(Bucket="role-bucket")
    s3.put_object(Bucket="role-bucket", Key="k", Body=b"from a role")
    assert s3.get_object(Bucket="role-bucket", Key="k")["Body"].read() == b"from a role"
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "role-bucket", "Key": "k"})
    assert "X-Amz-Security-Token=" in url
    assert requests.get(url).content == b"from a role"
    # The role's policies decide: IAM too is open to this role's sessions.
    iam = client(live, "iam", creds)
    assert iam.list_users()["Users"]
    # AssumeRole is the role's last use, as IAM's GetRole tells.
    used = iam.get_role(RoleName="worker")["Role"]["RoleLastUsed"]["LastUsedDate"]
    assert dt.timedelta(0) <= dt.datetime.now(dt.timezone.utc) - used < dt.timedelta(minutes=5)


def test_assume_role_refusals(live):
    account_id = admin_account_id(live)
    nobody = make_role(live, "nobody", trust(AWS="arn:aws:iam::123456789012:root"))
    code, status, response = failure(sts(live).assume_role, RoleArn=nobody,
                                     RoleSessionName="s1")
    assert (code, status) == ("AccessDenied", 403)
    assert response["Error"]["Message"] == (
        f"User: arn:aws:iam::{account_id}:user/admin is not authorized to perform: "
        f"sts:AssumeRole on resource: {nobody}")
    # A role that does not exist is refused the same way (its existence is not told).
    missing = f"arn:aws:iam::{account_id}:role/missing"
    assert error_code(sts(live).assume_role, RoleArn=missing, RoleSessionName="s1") \
        == "AccessDenied"
    # Another account's role that does not trust this one.
    make_user(live, "other", "someone")
    other_role = make_role(live, "theirs", trust(AWS="arn:aws:iam::123456789012:root"),
                           account="other")
    assert error_code(sts(live).assume_role, RoleArn=other_role, RoleSessionName="s1") \
        == "AccessDenied"
    assert error_code(sts(live).assume_role, RoleArn="arn:aws:iam::12345:role/x",
                      RoleSessionName="s1") == "ValidationError"


def test_trust_naming_the_user_or_its_account(live):
    account_id = admin_account_id(live)
    key, secret, user_arn = make_user(live, accounts.ADMIN_ACCOUNT, "alice")
    named = make_role(live, "named", trust(AWS=user_arn))
    by_account = make_role(live, "by-account", trust(AWS=account_id))
    alice = sts(live, (key, secret))
    # Named explicitly in the role's trust policy: enough within the account.
    assert alice.assume_role(RoleArn=named, RoleSessionName="aa")["Credentials"]
    # Naming the account delegates to the account's policies: alice has none.
    code, _, response = failure(alice.assume_role, RoleArn=by_account, RoleSessionName="aa")
    assert code == "AccessDenied" and user_arn in response["Error"]["Message"]
    key2, secret2, _ = make_user(live, accounts.ADMIN_ACCOUNT, "bob", json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": by_account}]}))
    assert sts(live, (key2, secret2)).assume_role(RoleArn=by_account,
                                                  RoleSessionName="bb")["Credentials"]


def test_session_names_and_durations(live):
    account_id = admin_account_id(live)
    role_arn = make_role(live, "timed", trust(AWS=account_id), max_seconds=7200)
    raw = sts(live, parameter_validation=False)
    for bad in ("x", "a" * 65, "has space", "sl/ash"):
        code, status, response = failure(raw.assume_role, RoleArn=role_arn,
                                         RoleSessionName=bad)
        assert (code, status) == ("ValidationError", 400), bad
        assert "roleSessionName" in response["Error"]["Message"]
    code, _, response = failure(raw.assume_role, RoleArn=role_arn, RoleSessionName="ok",
                                DurationSeconds=899)
    assert code == "ValidationError"
    assert "greater than or equal to 900" in response["Error"]["Message"]
    code, _, response = failure(raw.assume_role, RoleArn=role_arn, RoleSessionName="ok",
                                DurationSeconds=7201)
    assert response["Error"]["Message"] == ("The requested DurationSeconds exceeds the "
                                            "MaxSessionDuration set for this role.")
    creds = raw.assume_role(RoleArn=role_arn, RoleSessionName="ok",
                            DurationSeconds=7200)["Credentials"]
    assert creds["Expiration"] - dt.datetime.now(dt.timezone.utc) > dt.timedelta(hours=1.9)
    # Role chaining: a role session may assume a role, for an hour at most.
    chained = sts(live, creds, parameter_validation=False)
    code, _, response = failure(chained.assume_role, RoleArn=role_arn,
                                RoleSessionName="again", DurationSeconds=3601)
    assert "role chaining" in response["Error"]["Message"]
    again = chained.assume_role(RoleArn=role_arn, RoleSessionName="again")["Credentials"]
    assert sts(live, again).get_caller_identity()["Arn"].endswith("assumed-role/timed/again")


def test_session_policies_and_tags_are_refused_not_ignored(live):
    role_arn = make_role(live, "plain", trust(AWS=admin_account_id(live)))
    code, _, response = failure(sts(live).assume_role, RoleArn=role_arn,
                                RoleSessionName="pp", Policy=ALL)
    assert code == "ValidationError" and "session policies" in response["Error"]["Message"]
    assert error_code(sts(live).assume_role, RoleArn=role_arn, RoleSessionName="pp",
                      Policy="{not json") == "MalformedPolicyDocument"
    code, _, response = failure(sts(live).assume_role, RoleArn=role_arn,
                                RoleSessionName="pp", Tags=[{"Key": "k", "Value": "v"}])
    assert code == "ValidationError" and "session tags" in response["Error"]["Message"]


def test_deleting_the_role_ends_its_sessions(live):
    role_arn = make_role(live, "doomed", trust(AWS=admin_account_id(live)))
    creds = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="ss")["Credentials"]
    assert sts(live, creds).get_caller_identity()
    with live.app.app_context():
        db.session.delete(db.session.execute(db.select(Role).filter_by(name="doomed"))
                          .scalar_one())
        db.session.commit()
    assert error_code(sts(live, creds).get_caller_identity) == "InvalidClientTokenId"


# --- GetSessionToken ----------------------------------------------------------------------

def test_get_session_token(live):
    key, secret, user_arn = make_user(live, accounts.ADMIN_ACCOUNT, "carol", ALL)
    carol = sts(live, (key, secret))
    creds = carol.get_session_token(DurationSeconds=900)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    me = sts(live, creds).get_caller_identity()
    assert me["Arn"] == user_arn and me["UserId"].startswith("AIDA")
    client(live, "ec2", creds).describe_instances()
    # IAM takes no GetSessionToken credentials without MFA, as on AWS.
    code, status, _ = failure(client(live, "iam", creds).get_user)
    assert (code, status) == ("InvalidClientTokenId", 403)
    # Sessions cannot ask for another.
    code, _, response = failure(sts(live, creds).get_session_token)
    assert (code, response["Error"]["Message"]) == (
        "AccessDenied", "Cannot call GetSessionToken with session credentials")
    raw = sts(live, (key, secret), parameter_validation=False)
    assert error_code(raw.get_session_token, DurationSeconds=899) == "ValidationError"
    assert error_code(raw.get_session_token, DurationSeconds=129601) == "ValidationError"
    # Default 12 h for a user; the account's root gets an hour at most.
    long = carol.get_session_token()["Credentials"]["Expiration"]
    assert long - dt.datetime.now(dt.timezone.utc) > dt.timedelta(hours=11.9)
    root = sts(live).get_session_token(DurationSeconds=129600)["Credentials"]["Expiration"]
    assert root - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(hours=1)


# --- the token in every signature check ---------------------------------------------------

def test_wrong_missing_and_expired_tokens(live):
    role_arn = make_role(live, "tokens", trust(AWS=admin_account_id(live)))
    creds = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="tt")["Credentials"]
    wrong = {**creds, "SessionToken": creds["SessionToken"][:-4] + "AAAA"}
    missing = (creds["AccessKeyId"], creds["SecretAccessKey"])
    ec2_wrong, ec2_missing = client(live, "ec2", wrong), client(live, "ec2", missing)
    assert failure(ec2_wrong.describe_regions)[:2] == ("InvalidClientTokenId", 403)
    assert failure(ec2_missing.describe_regions)[:2] == ("InvalidClientTokenId", 403)
    assert failure(client(live, "s3", wrong).list_buckets)[:2] == ("InvalidToken", 400)
    assert failure(client(live, "s3", missing).list_buckets)[:2] == ("InvalidAccessKeyId", 403)
    code, _, response = failure(sts(live, wrong).get_caller_identity)
    assert (code, response["Error"]["Message"]) == (
        "InvalidClientTokenId", "The security token included in the request is invalid.")
    # A token beside a long-term key is refused too.
    stray = {"AccessKeyId": live.key_id, "SecretAccessKey": live.secret,
             "SessionToken": creds["SessionToken"]}
    assert error_code(client(live, "ec2", stray).describe_regions) == "InvalidClientTokenId"

    expire(live, creds["AccessKeyId"])
    assert failure(client(live, "ec2", creds).describe_regions)[:2] == ("RequestExpired", 400)
    assert failure(client(live, "s3", creds).list_buckets)[:2] == ("ExpiredToken", 400)
    code, status, response = failure(sts(live, creds).get_caller_identity)
    assert (code, status) == ("ExpiredToken", 403)
    assert response["Error"]["Message"] == ("The security token included in the request is "
                                            "expired")


def test_signature_v2_with_a_session_token(live):
    """Query V2 (EC2's ``SecurityToken`` parameter) and S3's V2 header
    (``x-amz-security-token``), as botocore signs them."""
    role_arn = make_role(live, "v2", trust(AWS=admin_account_id(live)))
    creds = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="v2")["Credentials"]
    signer = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    query = AWSRequest("POST", live.endpoints["ec2"],
                       data={"Action": "DescribeRegions", "Version": "2016-11-15"})
    SigV2Auth(signer).add_auth(query)
    assert "SecurityToken" in query.data
    answer = requests.post(query.url, data=query.data)
    assert answer.status_code == 200 and b"<regionInfo>" in answer.content
    s3 = AWSRequest("GET", live.endpoints["s3"] + "/")
    HmacV1Auth(signer).add_auth(s3)
    assert "x-amz-security-token" in {k.lower() for k in s3.headers}
    answer = requests.get(s3.url, headers=dict(s3.headers))
    assert answer.status_code == 200 and b"ListAllMyBucketsResult" in answer.content
    expire(live, creds["AccessKeyId"])
    SigV2Auth(signer).add_auth(again := AWSRequest(
        "POST", live.endpoints["ec2"], data={"Action": "DescribeRegions",
                                             "Version": "2016-11-15"}))
    assert b"RequestExpired" in requests.post(again.url, data=again.data).content


def test_expired_rows_are_purged_by_later_mints(live):
    role_arn = make_role(live, "purge", trust(AWS=admin_account_id(live)))
    old = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="oo")["Credentials"]
    with live.app.app_context():
        db.session.get(StsSession, old["AccessKeyId"]).expires = \
            accounts.utcnow() - sessions.KEEP_EXPIRED - dt.timedelta(seconds=1)
        db.session.commit()
    sts(live).assume_role(RoleArn=role_arn, RoleSessionName="nn")
    with live.app.app_context():
        assert db.session.get(StsSession, old["AccessKeyId"]) is None


# --- the aws CLI and the endpoints --------------------------------------------------------

def test_aws_cli_assume_role_and_caller_identity(live):
    role_arn = make_role(live, "cli", trust(AWS=admin_account_id(live)))
    env = live.env()
    env["AWS_ENDPOINT_URL_STS"] = live.endpoints["sts"]
    out = subprocess.run(["aws", "sts", "assume-role", "--role-arn", role_arn,
                          "--role-session-name", "from-cli", "--output", "json"],
                         env=env, capture_output=True, text=True, check=True).stdout
    creds = json.loads(out)["Credentials"]
    env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
               AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
               AWS_SESSION_TOKEN=creds["SessionToken"])
    me = json.loads(subprocess.run(["aws", "sts", "get-caller-identity", "--output", "json"],
                                   env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert me["Arn"].endswith(":assumed-role/cli/from-cli")
    subprocess.run(["aws", "ec2", "describe-instances"], env=env, capture_output=True,
                   check=True)


def test_credentials_name_the_sts_endpoint(live):
    endpoints = live.endpoints
    assert endpoints["sts"] == live.base_url + "/services/Tokens"
    lines = credentials_module.env_lines("AKIA", "s", "r", endpoints)
    assert f"export AWS_ENDPOINT_URL_STS={endpoints['sts']}" in lines


# --- DecodeAuthorizationMessage -----------------------------------------------------------

def test_decode_authorization_message(live):
    from eucalite import access
    from eucalite.policy import evaluation

    key, secret, user_arn = make_user(live, accounts.ADMIN_ACCOUNT, "dave")
    with live.app.app_context():
        dave = accounts.principal_of(accounts.get_user(accounts.ADMIN_ACCOUNT, "dave"))
        encoded = access.encode_authorization_message(
            evaluation.Decision(evaluation.IMPLICIT_DENY), dave, "ec2:RunInstances", "*", {})
    decoded = json.loads(sts(live).decode_authorization_message(
        EncodedMessage=encoded)["DecodedMessage"])
    assert decoded["allowed"] is False and decoded["context"]["action"] == "ec2:RunInstances"
    assert decoded["context"]["principal"]["arn"] == user_arn
    # Decoding needs sts:DecodeAuthorizationMessage, which dave's (absent) policies lack.
    code, _, response = failure(sts(live, (key, secret)).decode_authorization_message,
                                EncodedMessage=encoded)
    assert code == "AccessDenied" and user_arn in response["Error"]["Message"]
    assert error_code(sts(live).decode_authorization_message, EncodedMessage="bm90IGl0") \
        == "InvalidAuthorizationMessageException"


def test_mfa_codes_are_refused_as_aws_refuses_an_unknown_device(live):
    code, _, response = failure(sts(live).get_session_token,
                                SerialNumber="arn:aws:iam::123456789012:mfa/me",
                                TokenCode="123456")
    assert code == "AccessDenied"
    assert response["Error"]["Message"].startswith("MultiFactorAuthentication failed")


def test_s3_v2_presigned_urls_and_post_forms_with_a_session(live):
    """S3's other signatures: a SigV2 presigned URL (the token rides in the query and is
    signed as a header) and a browser POST form (V4 and V2 policies with the token field)."""
    role_arn = make_role(live, "forms", trust(AWS=admin_account_id(live)))
    creds = sts(live).assume_role(RoleArn=role_arn, RoleSessionName="forms")["Credentials"]
    s3 = client(live, "s3", creds)
    s3.create_bucket(Bucket="forms-bucket")
    s3.put_object(Bucket="forms-bucket", Key="k", Body=b"v2")
    v2 = client(live, "s3", creds, signature_version="s3")
    url = v2.generate_presigned_url("get_object", Params={"Bucket": "forms-bucket", "Key": "k"})
    assert "x-amz-security-token=" in url and "AWSAccessKeyId=ASIA" in url
    assert requests.get(url).content == b"v2"
    for signer, key in ((s3, "v4-form"), (v2, "v2-form")):
        post = signer.generate_presigned_post("forms-bucket", key)
        assert "x-amz-security-token" in post["fields"]
        answer = requests.post(post["url"], data=post["fields"],
                               files={"file": ("f", b"posted")})
        assert answer.status_code == 204, answer.text
        assert s3.get_object(Bucket="forms-bucket", Key=key)["Body"].read() == b"posted"
    post = s3.generate_presigned_post("forms-bucket", "wrong")
    post["fields"]["x-amz-security-token"] = creds["SessionToken"][:-4] + "AAAA"
    answer = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")})
    assert (answer.status_code, xml_error_code(answer)) == (400, "InvalidToken")


def test_aws_cli_role_profile_through_eucalite_credentials(live):
    """The aws CLI's own role profiles (``role_arn`` + ``source_profile``) assume the role
    at the STS endpoint `eucalite credentials --profile` writes."""
    role_arn = make_role(live, "profiled", trust(AWS=admin_account_id(live)))
    env = cli_env(EUCALITE_DATA_DIR=live.app.config["EUCALITE"]["data_dir"],
                  EUCALITE_PORT=str(live.port))
    run(EUCALITE, "credentials", "--profile", "euca", env=env)
    config = Path(env["AWS_CONFIG_FILE"])
    assert "sts =" in config.read_text()
    with config.open("a") as handle:
        handle.write(f"\n[profile worker]\nrole_arn = {role_arn}\nsource_profile = euca\n"
                     f"role_session_name = from-profile\nregion = {live.region}\n"
                     "services = eucalite-euca\n")
    me = json.loads(run(AWS, "--profile", "worker", "sts", "get-caller-identity",
                        "--output", "json", env=env).stdout)
    assert me["Arn"].endswith(":assumed-role/profiled/from-profile")
