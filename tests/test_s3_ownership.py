"""Object Ownership and Block Public Access over HTTP, with boto3 and the aws CLI: AWS's
defaults for new buckets (ACLs disabled, public access blocked), what each setting refuses
or stops counting, GetBucketPolicyStatus, and the config defaults for pre-2023 clients."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from eucalite import config
from eucalite.s3.acl import canonical_id
from awsutil import error_code, failure
from liveutil import start_live
from s3util import acl_bucket, anonymous, policy_user, second_account

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"
ALL_BLOCKED = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
               "RestrictPublicBuckets": True}
NO_BLOCK = dict.fromkeys(ALL_BLOCKED, False)


def policy(bucket: str, principal, action: str = "s3:GetObject", **condition) -> str:
    statement = {"Effect": "Allow", "Principal": principal, "Action": action,
                 "Resource": f"arn:aws:s3:::{bucket}/*"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def ownership_of(s3, bucket: str) -> str:
    rules = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"]
    return rules[0]["ObjectOwnership"]


def owner_of(s3, bucket: str, key: str) -> str:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, FetchOwner=True)
    return listing["Contents"][0]["Owner"]["ID"]


@pytest.fixture
def s3(live):
    return live.client("s3")


# --- AWS's defaults for a new bucket ------------------------------------------------------

def test_new_bucket_has_acls_disabled_and_public_access_blocked(live, s3):
    s3.create_bucket(Bucket="fresh")
    assert ownership_of(s3, "fresh") == "BucketOwnerEnforced"
    assert s3.get_public_access_block(Bucket="fresh")[
        "PublicAccessBlockConfiguration"] == ALL_BLOCKED
    code, status, _ = failure(s3.put_bucket_acl, Bucket="fresh", ACL="public-read")
    assert (code, status) == ("AccessControlListNotSupported", 400)
    assert error_code(s3.put_object, Bucket="fresh", Key="k", Body=b"x",
                      ACL="public-read") == "AccessControlListNotSupported"
    assert error_code(s3.put_object, Bucket="fresh", Key="k", Body=b"x",
                      ACL="private") == "AccessControlListNotSupported"
    assert error_code(s3.put_object, Bucket="fresh", Key="k", Body=b"x",
                      GrantRead=f'uri="{ALL_USERS}"') == "AccessControlListNotSupported"
    assert error_code(s3.create_multipart_upload, Bucket="fresh", Key="m",
                      ACL="authenticated-read") == "AccessControlListNotSupported"
    assert "Contents" not in s3.list_objects_v2(Bucket="fresh")   # nothing was stored
    # bucket-owner-full-control, canned or as the equivalent grant, is accepted
    s3.put_object(Bucket="fresh", Key="k", Body=b"x", ACL="bucket-owner-full-control")
    owner = s3.get_bucket_acl(Bucket="fresh")["Owner"]["ID"]
    s3.put_object(Bucket="fresh", Key="g", Body=b"x", GrantFullControl=f'id="{owner}"')
    s3.put_object_acl(Bucket="fresh", Key="k", ACL="bucket-owner-full-control")
    assert error_code(s3.put_object_acl, Bucket="fresh", Key="k",
                      ACL="public-read") == "AccessControlListNotSupported"
    # reading ACLs still works: the bucket owner has full control, no one else anything
    grants = s3.get_object_acl(Bucket="fresh", Key="k")["Grants"]
    assert [(g["Grantee"].get("ID"), g["Permission"]) for g in grants] == \
        [(owner, "FULL_CONTROL")]
    copy = s3.copy_object(Bucket="fresh", Key="c", CopySource="fresh/k")
    assert copy["CopyObjectResult"]["ETag"]
    assert error_code(s3.copy_object, Bucket="fresh", Key="c2", CopySource="fresh/k",
                      ACL="public-read") == "AccessControlListNotSupported"


def test_create_bucket_acl_rules(s3):
    code, status, _ = failure(s3.create_bucket, Bucket="shared", ACL="public-read")
    assert (code, status) == ("InvalidBucketAclWithObjectOwnership", 400)
    assert error_code(s3.create_bucket, Bucket="shared", ACL="public-read",
                      ObjectOwnership="BucketOwnerEnforced") == \
        "InvalidBucketAclWithObjectOwnership"
    assert error_code(s3.head_bucket, Bucket="shared") == "404"    # not made
    assert error_code(s3.create_bucket, Bucket="shared",
                      ObjectOwnership="Everyone") == "InvalidArgument"
    # private, as rclone sends it for every bucket, makes ownership BucketOwnerPreferred
    s3.create_bucket(Bucket="rclone-style", ACL="private")
    assert ownership_of(s3, "rclone-style") == "BucketOwnerPreferred"
    s3.create_bucket(Bucket="shared", ACL="public-read", ObjectOwnership="ObjectWriter")
    assert ownership_of(s3, "shared") == "ObjectWriter"
    grants = s3.get_bucket_acl(Bucket="shared")["Grants"]
    assert {"Grantee": {"Type": "Group", "URI": ALL_USERS}, "Permission": "READ"} in grants


def test_create_bucket_with_ownership_or_acl_needs_those_permissions(live, s3):
    """CreateBucket with x-amz-object-ownership also needs s3:PutBucketOwnershipControls,
    and with any ACL but private s3:PutBucketAcl; a plain or private one only
    s3:CreateBucket."""
    creator, grant = policy_user(live, "creator")
    grant(["s3:CreateBucket"])
    assert error_code(creator.create_bucket, Bucket="owned",
                      ObjectOwnership="ObjectWriter") == "AccessDenied"
    assert error_code(creator.create_bucket, Bucket="owned", ObjectOwnership="ObjectWriter",
                      ACL="public-read") == "AccessDenied"
    assert error_code(s3.head_bucket, Bucket="owned") == "404"
    creator.create_bucket(Bucket="plain")
    creator.create_bucket(Bucket="private", ACL="private")
    grant(["s3:CreateBucket", "s3:PutBucketOwnershipControls"])
    assert error_code(creator.create_bucket, Bucket="owned", ObjectOwnership="ObjectWriter",
                      ACL="public-read") == "AccessDenied"
    creator.create_bucket(Bucket="owned", ObjectOwnership="ObjectWriter")
    assert ownership_of(s3, "owned") == "ObjectWriter"
    grant(["s3:CreateBucket", "s3:PutBucketOwnershipControls", "s3:PutBucketAcl"])
    creator.create_bucket(Bucket="public", ObjectOwnership="ObjectWriter", ACL="public-read")
    assert ownership_of(s3, "public") == "ObjectWriter"


# --- ownership of new objects and the access decision -------------------------------------

def _shared_bucket(live, s3, name: str, ownership: str):
    """A bucket of *ownership* another account may write to (a bucket policy naming it)."""
    other, other_id = second_account(live, "writer")
    s3.create_bucket(Bucket=name, ObjectOwnership=ownership)
    s3.put_bucket_policy(Bucket=name, Policy=policy(name, {"AWS": other_id}, "s3:PutObject"))
    return other, other_id


def test_bucket_owner_enforced_owns_every_object_and_acl_grants_stop_counting(live, s3):
    other, other_id = _shared_bucket(live, s3, "mixed", "ObjectWriter")
    s3.delete_public_access_block(Bucket="mixed")
    other.put_object(Bucket="mixed", Key="theirs", Body=b"written by other")
    s3.put_object(Bucket="mixed", Key="public", Body=b"for all", ACL="public-read")
    assert owner_of(s3, "mixed", "theirs") == canonical_id(other_id)
    # ObjectWriter: the other account's object is its own, the bucket owner may not read it
    assert error_code(s3.get_object, Bucket="mixed", Key="theirs") == "AccessDenied"
    assert anonymous("GET", live, "/mixed/public").status_code == 200

    s3.put_bucket_ownership_controls(Bucket="mixed", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert ownership_of(s3, "mixed") == "BucketOwnerEnforced"
    assert s3.get_object(Bucket="mixed", Key="theirs")["Body"].read() == b"written by other"
    owner = s3.get_bucket_acl(Bucket="mixed")["Owner"]["ID"]
    shown = s3.get_object_acl(Bucket="mixed", Key="public")
    assert shown["Owner"]["ID"] == owner and \
        [(g["Grantee"].get("ID"), g["Permission"]) for g in shown["Grants"]] == \
        [(owner, "FULL_CONTROL")]
    assert s3.get_object_acl(Bucket="mixed", Key="theirs")["Owner"]["ID"] == owner
    assert anonymous("GET", live, "/mixed/public").status_code == 403   # ACL no longer counts
    other.put_object(Bucket="mixed", Key="new", Body=b"x", ACL="bucket-owner-full-control")
    assert owner_of(s3, "mixed", "new") == owner
    assert error_code(other.put_object, Bucket="mixed", Key="n2", Body=b"x",
                      ACL="bucket-owner-read") == "AccessControlListNotSupported"


def test_bucket_owner_preferred_takes_objects_given_full_control(live, s3):
    other, other_id = _shared_bucket(live, s3, "preferred", "BucketOwnerPreferred")
    owner = s3.get_bucket_acl(Bucket="preferred")["Owner"]["ID"]
    other.put_object(Bucket="preferred", Key="given", Body=b"x",
                     ACL="bucket-owner-full-control")
    other.put_object(Bucket="preferred", Key="kept", Body=b"x")
    assert owner_of(s3, "preferred", "given") == owner
    assert owner_of(s3, "preferred", "kept") == canonical_id(other_id)
    assert s3.get_object(Bucket="preferred", Key="given")["Body"].read() == b"x"
    assert error_code(s3.get_object, Bucket="preferred", Key="kept") == "AccessDenied"


def test_ownership_controls_put_get_delete_and_errors(live, s3):
    s3.create_bucket(Bucket="controls")
    s3.delete_bucket_ownership_controls(Bucket="controls")
    code, status, _ = failure(s3.get_bucket_ownership_controls, Bucket="controls")
    assert (code, status) == ("OwnershipControlsNotFoundError", 404)
    # no controls: objects are their writer's and ACLs apply, as for a pre-2023 bucket
    s3.put_public_access_block(Bucket="controls", PublicAccessBlockConfiguration=NO_BLOCK)
    s3.put_bucket_acl(Bucket="controls", ACL="public-read")
    assert anonymous("GET", live, "/controls").status_code == 200
    # ACLs may be disabled only once the bucket ACL grants no one else
    assert error_code(s3.put_bucket_ownership_controls, Bucket="controls", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}) == \
        "InvalidBucketAclWithObjectOwnership"
    s3.put_bucket_acl(Bucket="controls", ACL="private")
    s3.put_bucket_ownership_controls(Bucket="controls", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert error_code(s3.put_bucket_ownership_controls, Bucket="controls", OwnershipControls={
        "Rules": [{"ObjectOwnership": "Nobody"}]}) == "MalformedXML"
    assert error_code(s3.get_bucket_ownership_controls, Bucket="missing") == "NoSuchBucket"
    other, _ = second_account(live)
    assert error_code(other.get_bucket_ownership_controls, Bucket="controls") == "AccessDenied"
    assert error_code(other.delete_bucket_ownership_controls, Bucket="controls") == \
        "AccessDenied"


# --- Block Public Access ------------------------------------------------------------------

def test_public_access_block_put_get_delete(live, s3):
    s3.create_bucket(Bucket="blocked")
    s3.put_public_access_block(Bucket="blocked", PublicAccessBlockConfiguration={
        "BlockPublicPolicy": True})
    assert s3.get_public_access_block(Bucket="blocked")["PublicAccessBlockConfiguration"] == \
        dict(NO_BLOCK, BlockPublicPolicy=True)
    s3.delete_public_access_block(Bucket="blocked")
    code, status, _ = failure(s3.get_public_access_block, Bucket="blocked")
    assert (code, status) == ("NoSuchPublicAccessBlockConfiguration", 404)
    bad = requests.put(live.base_url + "/blocked?publicAccessBlock",
                       data=b"<PublicAccessBlockConfiguration><BlockPublicAcls>maybe"
                            b"</BlockPublicAcls></PublicAccessBlockConfiguration>")
    assert bad.status_code == 403               # anonymous: refused before the body counts
    other, _ = second_account(live)
    assert error_code(other.put_public_access_block, Bucket="blocked",
                      PublicAccessBlockConfiguration=NO_BLOCK) == "AccessDenied"


def test_block_and_ignore_public_acls(live, s3):
    acl_bucket(s3, "acls")
    s3.put_object(Bucket="acls", Key="open", Body=b"open", ACL="public-read")
    assert anonymous("GET", live, "/acls/open").status_code == 200
    s3.put_public_access_block(Bucket="acls", PublicAccessBlockConfiguration=dict(
        NO_BLOCK, BlockPublicAcls=True))
    code, status, _ = failure(s3.put_object, Bucket="acls", Key="o2", Body=b"x",
                              ACL="public-read")
    assert (code, status) == ("AccessDenied", 403)
    assert error_code(s3.put_object, Bucket="acls", Key="o2", Body=b"x",
                      GrantRead=f'uri="{ALL_USERS}"') == "AccessDenied"
    assert error_code(s3.put_bucket_acl, Bucket="acls", ACL="public-read-write") == \
        "AccessDenied"
    assert error_code(s3.put_object_acl, Bucket="acls", Key="open",
                      ACL="authenticated-read") == "AccessDenied"
    s3.put_object(Bucket="acls", Key="o3", Body=b"x", ACL="bucket-owner-read")   # not public
    # BlockPublicAcls leaves existing public grants alone; IgnorePublicAcls stops them
    assert anonymous("GET", live, "/acls/open").status_code == 200
    s3.put_public_access_block(Bucket="acls", PublicAccessBlockConfiguration=dict(
        NO_BLOCK, IgnorePublicAcls=True))
    assert anonymous("GET", live, "/acls/open").status_code == 403
    grants = s3.get_object_acl(Bucket="acls", Key="open")["Grants"]
    assert any(g["Grantee"].get("URI") == ALL_USERS for g in grants)    # kept, not counted


def test_block_public_policy_and_policy_status(s3):
    s3.create_bucket(Bucket="policies")
    assert error_code(s3.get_bucket_policy_status, Bucket="policies") == "NoSuchBucketPolicy"
    code, status, _ = failure(s3.put_bucket_policy, Bucket="policies",
                              Policy=policy("policies", "*"))
    assert (code, status) == ("AccessDenied", 403)
    assert error_code(s3.put_bucket_policy, Bucket="policies",
                      Policy=policy("policies", {"AWS": "*"})) == "AccessDenied"
    # not public: a fixed principal, or everyone confined to a network or source account
    for allowed in (policy("policies", {"AWS": "123456789012"}),
                    policy("policies", "*", IpAddress={"aws:SourceIp": "10.0.0.0/8"}),
                    policy("policies", "*", StringEquals={"aws:SourceAccount": "123456789012"})):
        s3.put_bucket_policy(Bucket="policies", Policy=allowed)
        assert s3.get_bucket_policy_status(Bucket="policies")["PolicyStatus"] == \
            {"IsPublic": False}
    # still public: the whole Internet, or a wildcard value
    for public in (policy("policies", "*", IpAddress={"aws:SourceIp": "0.0.0.0/0"}),
                   policy("policies", "*", StringLike={"aws:SourceAccount": "1234*"})):
        assert error_code(s3.put_bucket_policy, Bucket="policies", Policy=public) == \
            "AccessDenied"
    s3.delete_public_access_block(Bucket="policies")
    s3.put_bucket_policy(Bucket="policies", Policy=policy("policies", "*"))
    assert s3.get_bucket_policy_status(Bucket="policies")["PolicyStatus"] == {"IsPublic": True}


def test_restrict_public_buckets_limits_a_public_policy_to_the_owners_account(live, s3):
    s3.create_bucket(Bucket="website")
    s3.delete_public_access_block(Bucket="website")
    s3.put_bucket_policy(Bucket="website", Policy=policy("website", "*"))
    s3.put_object(Bucket="website", Key="index.html", Body=b"<html/>")
    other, other_id = second_account(live)
    assert anonymous("GET", live, "/website/index.html").status_code == 200
    assert other.get_object(Bucket="website", Key="index.html")["Body"].read() == b"<html/>"
    s3.put_public_access_block(Bucket="website", PublicAccessBlockConfiguration=dict(
        NO_BLOCK, RestrictPublicBuckets=True))
    assert anonymous("GET", live, "/website/index.html").status_code == 403
    assert error_code(other.get_object, Bucket="website", Key="index.html") == "AccessDenied"
    assert s3.get_object(Bucket="website", Key="index.html")["Body"].read() == b"<html/>"
    # a policy naming the other account is not public: Restrict leaves it alone
    s3.put_bucket_policy(Bucket="website", Policy=policy("website", {"AWS": other_id}))
    assert other.get_object(Bucket="website", Key="index.html")["Body"].read() == b"<html/>"


def test_post_object_acl_follows_the_bucket(live, s3):
    s3.create_bucket(Bucket="forms")
    post = s3.generate_presigned_post("forms", "f.txt", Fields={"acl": "public-read"},
                                      Conditions=[{"acl": "public-read"}])
    refused = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")})
    assert refused.status_code == 400 and b"AccessControlListNotSupported" in refused.content
    s3.put_bucket_ownership_controls(Bucket="forms", OwnershipControls={
        "Rules": [{"ObjectOwnership": "ObjectWriter"}]})
    refused = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")})
    assert refused.status_code == 403                  # BlockPublicAcls
    s3.delete_public_access_block(Bucket="forms")
    done = requests.post(post["url"], data=post["fields"], files={"file": ("f", b"x")})
    assert done.status_code == 204, done.text
    assert anonymous("GET", live, "/forms/f.txt").content == b"x"


# --- the aws CLI ------------------------------------------------------------------------

def test_aws_cli_reads_and_writes_the_settings(live, s3):
    aws = str(Path(sys.executable).parent / "aws")

    def cli(*args) -> dict:
        done = subprocess.run([aws, "s3api", *args, "--output", "json"], env=live.env(),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    cli("create-bucket", "--bucket", "cli-bucket", "--object-ownership", "ObjectWriter")
    assert cli("get-bucket-ownership-controls", "--bucket", "cli-bucket")[
        "OwnershipControls"]["Rules"] == [{"ObjectOwnership": "ObjectWriter"}]
    cli("put-public-access-block", "--bucket", "cli-bucket", "--public-access-block-"
        "configuration", "BlockPublicAcls=true,IgnorePublicAcls=false,"
        "BlockPublicPolicy=false,RestrictPublicBuckets=false")
    assert cli("get-public-access-block", "--bucket", "cli-bucket")[
        "PublicAccessBlockConfiguration"] == dict(NO_BLOCK, BlockPublicAcls=True)
    cli("put-bucket-policy", "--bucket", "cli-bucket", "--policy", policy("cli-bucket", "*"))
    assert cli("get-bucket-policy-status", "--bucket", "cli-bucket") == \
        {"PolicyStatus": {"IsPublic": True}}
    cli("delete-bucket-ownership-controls", "--bucket", "cli-bucket")
    cli("delete-public-access-block", "--bucket", "cli-bucket")
    assert error_code(s3.get_public_access_block, Bucket="cli-bucket") == \
        "NoSuchPublicAccessBlockConfiguration"


# --- the cloud's defaults -----------------------------------------------------------------

def test_config_defaults_for_pre_2023_clients(tmp_path):
    live, server = start_live(tmp_path / "data", s3_default_object_ownership="ObjectWriter",
                              s3_default_block_public_access=False)
    try:
        s3 = live.client("s3")
        s3.create_bucket(Bucket="legacy", ACL="public-read")     # as euca2ools' uploads do
        assert ownership_of(s3, "legacy") == "ObjectWriter"
        assert error_code(s3.get_public_access_block, Bucket="legacy") == \
            "NoSuchPublicAccessBlockConfiguration"
        s3.put_object(Bucket="legacy", Key="image.part", Body=b"x", ACL="aws-exec-read")
        s3.put_object(Bucket="legacy", Key="open", Body=b"x", ACL="public-read")
        assert anonymous("GET", live, "/legacy/open").status_code == 200
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="s3_default_object_ownership"):
        config.load({"data_dir": str(tmp_path / "other"),
                     "s3_default_object_ownership": "Everyone"}, environ={})
