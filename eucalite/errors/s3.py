"""S3 (Walrus) error codes, one named class each, with the HTTP status AWS gives them.

Raise these instead of spelling a code inline: ``raise InvalidArgument("...",
ArgumentName="max-keys", ArgumentValue=text)``. Keyword arguments become the extra elements
of S3's ``<Error>`` document (``<BucketName>``, ``<Key>``, ``<ArgumentName>``...). A class
with a ``default_message`` may be raised without one: that is the message S3 sends.
Authentication failures are :class:`eucalite.errors.AuthError` (one kind, a code per
service), not classes here.
"""
from __future__ import annotations

from . import AwsError


class S3Error(AwsError):
    """The base of every S3 error: the code and status are the class's."""

    status = 400
    default_message = ""

    def __init__(self, message: str | None = None, **extra: str):
        super().__init__(self.default_message if message is None else message, **extra)


# --- 400 ------------------------------------------------------------------------------

class BadDigest(S3Error):
    code = "BadDigest"


class BadRequest(S3Error):
    code = "BadRequest"


class EntityTooLarge(S3Error):
    code = "EntityTooLarge"


class EntityTooSmall(S3Error):
    code = "EntityTooSmall"


class IllegalVersioningConfigurationException(S3Error):
    code = "IllegalVersioningConfigurationException"


class IncompleteBody(S3Error):
    code = "IncompleteBody"
    default_message = ("You did not provide the number of bytes specified by the "
                       "Content-Length HTTP header.")


class InvalidArgument(S3Error):
    code = "InvalidArgument"


class InvalidBucketName(S3Error):
    code = "InvalidBucketName"


class InvalidDigest(S3Error):
    code = "InvalidDigest"


class InvalidPart(S3Error):
    code = "InvalidPart"


class InvalidPartOrder(S3Error):
    code = "InvalidPartOrder"


class InvalidPolicyDocument(S3Error):
    code = "InvalidPolicyDocument"


class InvalidRequest(S3Error):
    code = "InvalidRequest"


class InvalidStorageClass(S3Error):
    code = "InvalidStorageClass"


class InvalidTag(S3Error):
    code = "InvalidTag"


class KeyTooLongError(S3Error):
    code = "KeyTooLongError"


class MalformedACLError(S3Error):
    code = "MalformedACLError"
    default_message = ("The XML you provided was not well-formed or did not validate against "
                       "our published schema")


class MalformedPolicy(S3Error):
    code = "MalformedPolicy"


class MalformedTrailerError(S3Error):
    code = "MalformedTrailerError"
    default_message = ("The request contained trailing data that was not well-formed or did "
                       "not conform to our published schema.")


class MalformedXML(S3Error):
    code = "MalformedXML"
    default_message = ("The XML you provided was not well-formed or did not validate against "
                       "our published schema.")


class MaxMessageLengthExceeded(S3Error):
    code = "MaxMessageLengthExceeded"


class MetadataTooLarge(S3Error):
    code = "MetadataTooLarge"


class MissingSecurityHeader(S3Error):
    code = "MissingSecurityHeader"


class UnexpectedContent(S3Error):
    code = "UnexpectedContent"


class UnresolvableGrantByEmailAddress(S3Error):
    code = "UnresolvableGrantByEmailAddress"
    default_message = "The e-mail address you provided does not match any account on record."


# --- 3xx, 403, 404, 405, 409, 411, 412, 416 ------------------------------------------

class NotModified(S3Error):
    code, status = "NotModified", 304


class AccessDenied(S3Error):
    code, status = "AccessDenied", 403
    default_message = "Access Denied"


class AccessForbidden(S3Error):
    """A CORS request the bucket's rules do not allow."""

    code, status = "AccessForbidden", 403


class NoSuchBucket(S3Error):
    code, status = "NoSuchBucket", 404

    def __init__(self, name: str):
        super().__init__("The specified bucket does not exist", BucketName=name)


class NoSuchKey(S3Error):
    code, status = "NoSuchKey", 404

    def __init__(self, key: str, **extra: str):
        super().__init__("The specified key does not exist.", Key=key, **extra)


class NoSuchUpload(S3Error):
    code, status = "NoSuchUpload", 404

    def __init__(self, upload_id: str):
        super().__init__("The specified upload does not exist. The upload ID may be invalid, "
                         "or the upload may have been aborted or completed.",
                         UploadId=upload_id)


class NoSuchVersion(S3Error):
    code, status = "NoSuchVersion", 404


class NoSuchBucketPolicy(S3Error):
    code, status = "NoSuchBucketPolicy", 404
    default_message = "The bucket policy does not exist"


class NoSuchCORSConfiguration(S3Error):
    code, status = "NoSuchCORSConfiguration", 404
    default_message = "The CORS configuration does not exist"


class NoSuchLifecycleConfiguration(S3Error):
    code, status = "NoSuchLifecycleConfiguration", 404
    default_message = "The lifecycle configuration does not exist"


class NoSuchTagSet(S3Error):
    code, status = "NoSuchTagSet", 404
    default_message = "The TagSet does not exist"


class MethodNotAllowed(S3Error):
    code, status = "MethodNotAllowed", 405


class BucketAlreadyExists(S3Error):
    code, status = "BucketAlreadyExists", 409


class BucketAlreadyOwnedByYou(S3Error):
    code, status = "BucketAlreadyOwnedByYou", 409


class BucketNotEmpty(S3Error):
    code, status = "BucketNotEmpty", 409


class OperationAborted(S3Error):
    code, status = "OperationAborted", 409


class MissingContentLength(S3Error):
    code, status = "MissingContentLength", 411


class PreconditionFailed(S3Error):
    code, status = "PreconditionFailed", 412


class InvalidPartNumber(S3Error):
    code, status = "InvalidPartNumber", 416


class InvalidRange(S3Error):
    code, status = "InvalidRange", 416


# --- 5xx ------------------------------------------------------------------------------

class NotImplemented(S3Error):  # noqa: A001 - S3's code; shadows the builtin constant here only
    code, status = "NotImplemented", 501


class SlowDown(S3Error):
    code, status = "SlowDown", 503


class ServiceUnavailable(S3Error):
    """S3's "Service is unable to handle request": here, the backend holding a bucket's
    data (eucalite.s3.backends) cannot be reached or failed; the message names it."""
    code, status = "ServiceUnavailable", 503


# Quotas (eucalite.quotas): more buckets than the account's or user's quota allows.
class TooManyBuckets(S3Error):
    code = "TooManyBuckets"


# Quotas: a bucket's object count at its quota (Walrus' answer to a bucket past a quota was
# a refusal; this names it).
class QuotaExceeded(S3Error):
    code = "QuotaExceeded"
    status = 403


# Ownership controls (eucalite.s3.ownership): ACLs on a BucketOwnerEnforced bucket.
class AccessControlListNotSupported(S3Error):
    code = "AccessControlListNotSupported"
    default_message = "The bucket does not allow ACLs"


class InvalidBucketAclWithObjectOwnership(S3Error):
    code = "InvalidBucketAclWithObjectOwnership"
    default_message = ("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced "
                       "setting")


class OwnershipControlsNotFoundError(S3Error):
    code, status = "OwnershipControlsNotFoundError", 404
    default_message = "The bucket ownership controls were not found"


class NoSuchPublicAccessBlockConfiguration(S3Error):
    code, status = "NoSuchPublicAccessBlockConfiguration", 404
    default_message = "The public access block configuration was not found"


# Conditional writes: a write whose condition held when it arrived lost to a concurrent one.
class ConditionalRequestConflict(S3Error):
    code, status = "ConditionalRequestConflict", 409


# Object Lock
class InvalidBucketState(S3Error):
    code, status = "InvalidBucketState", 409


class ObjectLockConfigurationNotFoundError(S3Error):
    code, status = "ObjectLockConfigurationNotFoundError", 404
    default_message = "Object Lock configuration does not exist for this bucket"


class NoSuchObjectLockConfiguration(S3Error):
    code, status = "NoSuchObjectLockConfiguration", 404
    default_message = "The specified object does not have a ObjectLock configuration"


class InvalidEncryptionAlgorithmError(S3Error):
    code = "InvalidEncryptionAlgorithmError"
    default_message = "The encryption request you specified is not valid. The valid value is AES256."


class InvalidURI(S3Error):
    code = "InvalidURI"
    default_message = "Couldn't parse the specified URI."
