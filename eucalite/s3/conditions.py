"""Request conditions that are not access decisions: conditional writes (``If-None-Match:
*`` and ``If-Match: <etag>`` on PutObject, CopyObject and CompleteMultipartUpload) and the
``x-amz-expected-bucket-owner`` / ``x-amz-source-expected-bucket-owner`` checks.

A conditional write is checked twice, as S3 does: once when the request arrives, so a
write that cannot succeed is refused before its body is stored (412 PreconditionFailed, or
404 NoSuchKey for ``If-Match`` on a missing key), and again inside the transaction that
records the new version (:meth:`WriteCondition.recheck`, passed to
``objects.record(precondition=...)``). Writes are serialized by the write lock, so of two
racing ``If-None-Match: *`` PUTs exactly one succeeds; the loser, whose condition held when
it arrived, gets 409 ConditionalRequestConflict as AWS answers a write that lost to a
concurrent one.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from ..accounts import Principal
from ..errors import s3 as s3_errors
from ..errors.s3 import AccessDenied, NoSuchKey, PreconditionFailed
from . import authz, buckets, objects
from .models import ObjectVersion


def precondition_failed(condition: str) -> PreconditionFailed:
    return PreconditionFailed("At least one of the pre-conditions you "
                              "specified did not hold", Condition=condition)


def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match list (quoted or not, ``*`` for any) names *etag*."""
    wanted = [item.strip().strip('"') for item in header.split(",")]
    return "*" in wanted or etag in wanted


# --- conditional writes ---------------------------------------------------------------------

@dataclass(frozen=True)
class WriteCondition:
    """The conditions a write carries: create only (``If-None-Match: *``) and/or replace
    only the version with this ETag (``If-Match``)."""

    key: str
    create_only: bool
    match: str | None

    def check(self, current: ObjectVersion | None) -> None:
        """Refuse the write as S3 does when the request arrives: 412 / 404."""
        exists = current is not None and not current.delete_marker
        if self.create_only and exists:
            raise precondition_failed("If-None-Match")
        if self.match is not None:
            if not exists:
                raise NoSuchKey(self.key)
            if not etag_matches(self.match, current.etag):
                raise precondition_failed("If-Match")

    def recheck(self, bucket) -> None:
        """The check again under the write lock, just before the version is recorded: a
        condition that held on arrival and fails now lost to a concurrent write (409)."""
        try:
            self.check(objects.latest(bucket, self.key))
        except (PreconditionFailed, NoSuchKey):
            raise s3_errors.ConditionalRequestConflict(
                "The conditional request cannot succeed due to a conflicting operation "
                "against this resource.") from None


def write_condition(headers: dict[str, str], key: str) -> WriteCondition | None:
    """The write conditions in *headers* (None when there are none)."""
    none_match, match = headers.get("if-none-match"), headers.get("if-match")
    if none_match is None and match is None:
        return None
    if none_match is not None and none_match.strip() != "*":
        raise s3_errors.NotImplemented("If-None-Match on a write accepts only '*'.")
    return WriteCondition(key, none_match is not None, match)


def checked_write_condition(requester: Principal | None, headers: dict[str, str], bucket,
                            key: str) -> WriteCondition | None:
    """The write conditions in *headers*, already checked against the current version;
    the caller passes ``condition.recheck`` to the write as its precondition.

    Only a requester who may write the key learns whether it exists (AWS asks
    ``s3:PutObject`` of a conditional write): others get AccessDenied first."""
    condition = write_condition(headers, key)
    if condition is not None:
        authz.require(requester, "s3:PutObject", bucket, key=key)
        condition.check(objects.latest(bucket, key))
    return condition


# --- expected bucket owner ------------------------------------------------------------------

def check_expected_owners(bucket_name: str | None, headers: dict[str, str]) -> None:
    """AccessDenied unless the bucket (and a copy's source bucket) belongs to the account
    ``x-amz-expected-bucket-owner`` (``x-amz-source-expected-bucket-owner``) names.

    A bucket that does not exist is left to the operation (CreateBucket, or NoSuchBucket)."""
    expected = headers.get("x-amz-expected-bucket-owner")
    if expected is not None and bucket_name:
        _check_owner(bucket_name, expected)
    source_expected = headers.get("x-amz-source-expected-bucket-owner")
    source = headers.get("x-amz-copy-source")
    if source_expected is not None and source:
        source_bucket = unquote(source.partition("?")[0]).lstrip("/").partition("/")[0]
        if source_bucket:
            _check_owner(source_bucket, source_expected)


def _check_owner(bucket_name: str, expected: str) -> None:
    try:
        bucket = buckets.find(bucket_name)
    except s3_errors.NoSuchBucket:
        return
    if bucket.owner_id != expected.strip():
        raise AccessDenied()
