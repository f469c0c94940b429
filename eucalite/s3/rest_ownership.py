"""S3 controllers for a bucket's ownership controls (?ownershipControls), Block Public
Access (?publicAccessBlock) and policy status (?policyStatus); the rules they set are
:mod:`eucalite.s3.ownership`'s."""
from __future__ import annotations

from flask import Response

from ..errors.s3 import NoSuchBucketPolicy, OwnershipControlsNotFoundError
from . import buckets, ownership, policy
from .routing import S3Request, empty, route, xml_response


@route("GET", "bucket", "ownershipControls")
def get_ownership_controls(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketOwnershipControls")
    if bucket.ownership is None:
        raise OwnershipControlsNotFoundError(BucketName=req.bucket)
    return xml_response(ownership.ownership_controls_xml(bucket.ownership))


@route("PUT", "bucket", "ownershipControls")
def put_ownership_controls(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:PutBucketOwnershipControls")
    ownership.store_ownership(req.bucket, ownership.parse_ownership_controls(req.body()))
    return empty(200)


@route("DELETE", "bucket", "ownershipControls")
def delete_ownership_controls(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:PutBucketOwnershipControls")
    ownership.store_ownership(req.bucket, None)
    return empty(204)


@route("GET", "bucket", "publicAccessBlock")
def get_public_access_block(req: S3Request) -> Response:
    settings = buckets.get_setting(req.requester, req.bucket, "public_access_block")
    return xml_response(ownership.public_access_block_xml(settings))


@route("PUT", "bucket", "publicAccessBlock")
def put_public_access_block(req: S3Request) -> Response:
    buckets.get(req.requester, req.bucket, "s3:PutBucketPublicAccessBlock")   # before the body
    settings = ownership.parse_public_access_block(req.body())
    buckets.put_setting(req.requester, req.bucket, "public_access_block", settings)
    return empty(200)


@route("DELETE", "bucket", "publicAccessBlock")
def delete_public_access_block(req: S3Request) -> Response:
    buckets.delete_setting(req.requester, req.bucket, "public_access_block")
    return empty(204)


@route("GET", "bucket", "policyStatus")
def get_policy_status(req: S3Request) -> Response:
    bucket = buckets.get(req.requester, req.bucket, "s3:GetBucketPolicyStatus")
    text = bucket.get_json("policy")
    if text is None:
        raise NoSuchBucketPolicy(BucketName=req.bucket)
    parsed = policy.parse_policy(text, bucket.name)
    return xml_response(ownership.policy_status_xml(ownership.is_public(parsed)))
