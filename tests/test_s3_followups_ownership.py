"""Who owns what a listing shows in a bucket with ACLs disabled (BucketOwnerEnforced), over
real HTTP with boto3: the bucket owner owns every object, so ListObjects(V2) and
ListObjectVersions show it as the Owner of every version and delete marker, whichever
account wrote or deleted it and whether before or after the setting; with ObjectWriter the
account that wrote (or deleted) it."""
from __future__ import annotations

import json

import pytest

from eucalite.s3.acl import canonical_id
from s3util import second_account


@pytest.fixture
def s3(live):
    return live.client("s3")


def _shared(live, s3, name: str, ownership: str):
    """Versioned bucket *name* another account may write to and delete from."""
    other, other_id = second_account(live, "writer")
    s3.create_bucket(Bucket=name, ObjectOwnership=ownership)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": other_id},
            "Action": ["s3:PutObject", "s3:DeleteObject"],
            "Resource": f"arn:aws:s3:::{name}/*"}]}))
    return other, canonical_id(other_id)


def _owners(s3, bucket: str) -> tuple[list[str], list[str], list[str]]:
    """(versions', delete markers', current objects') owner IDs as listed."""
    versions = s3.list_object_versions(Bucket=bucket)
    current = s3.list_objects_v2(Bucket=bucket, FetchOwner=True).get("Contents", [])
    return ([item["Owner"]["ID"] for item in versions.get("Versions", [])],
            [item["Owner"]["ID"] for item in versions.get("DeleteMarkers", [])],
            [item["Owner"]["ID"] for item in current])


def _bucket_owner(s3, bucket: str) -> str:
    return s3.get_bucket_acl(Bucket=bucket)["Owner"]["ID"]


def test_bucket_owner_enforced_lists_the_bucket_owner_for_every_version_and_marker(live, s3):
    other, _other_id = _shared(live, s3, "enforced", "BucketOwnerEnforced")
    owner = _bucket_owner(s3, "enforced")
    other.put_object(Bucket="enforced", Key="gone", Body=b"x")
    other.delete_object(Bucket="enforced", Key="gone")         # the other account's marker
    other.put_object(Bucket="enforced", Key="kept", Body=b"y")
    assert _owners(s3, "enforced") == ([owner, owner], [owner], [owner])


def test_object_writer_lists_the_account_that_wrote_or_deleted(live, s3):
    other, other_id = _shared(live, s3, "writer", "ObjectWriter")
    owner = _bucket_owner(s3, "writer")
    other.put_object(Bucket="writer", Key="gone", Body=b"x")
    other.delete_object(Bucket="writer", Key="gone")
    s3.put_object(Bucket="writer", Key="mine", Body=b"y")
    versions, markers, current = _owners(s3, "writer")
    assert (sorted(versions), markers, current) == (sorted([other_id, owner]), [other_id],
                                                    [owner])
    # Disabling ACLs makes the bucket owner the owner of all that was there before.
    s3.put_bucket_ownership_controls(Bucket="writer", OwnershipControls={
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]})
    assert _owners(s3, "writer") == ([owner, owner], [owner], [owner])
