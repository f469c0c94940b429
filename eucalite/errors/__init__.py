"""One exception hierarchy for every API.

Each error carries the AWS error code, the HTTP status and a message. Protocol adapters
(EC2 Query, IAM Query, S3 REST) catch :class:`AwsError` and render their own envelope; any
other exception becomes ``InternalError`` with the traceback logged, never returned.

Authentication errors differ per service in AWS (S3 says ``InvalidAccessKeyId`` where EC2
says ``InvalidClientTokenId``), so :class:`AuthError` carries a *kind* and each adapter maps
it to its service's code with :func:`auth_code`.
"""
from __future__ import annotations


class AwsError(Exception):
    """An error that reaches the client as ``code`` with HTTP ``status``."""

    code = "InternalError"
    status = 500

    def __init__(self, message: str = "", code: str | None = None, status: int | None = None,
                 **extra: str):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        #: Extra elements some envelopes carry (S3's <Resource>, <BucketName>, ...).
        self.extra = extra

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"{type(self).__name__}({self.code}, {self.status}, {self.message!r})"


class ClientError(AwsError):
    """The request is wrong; fixing the request fixes it (HTTP 400 unless told)."""

    code = "InvalidParameterValue"
    status = 400


class InvalidAction(ClientError):
    code = "InvalidAction"


class MissingAction(ClientError):
    code = "MissingAction"


class MissingParameter(ClientError):
    code = "MissingParameter"


class InvalidParameterValue(ClientError):
    code = "InvalidParameterValue"


class InvalidParameterCombination(ClientError):
    code = "InvalidParameterCombination"


class UnknownParameter(ClientError):
    code = "UnknownParameter"


class MalformedQueryString(ClientError):
    code = "MalformedQueryString"


class MethodNotAllowed(ClientError):
    """A Query API asked with a method other than GET or POST."""

    code = "MethodNotAllowed"
    status = 405


class RequestEntityTooLarge(ClientError):
    code = "RequestEntityTooLarge"
    status = 413


class DryRunOperation(ClientError):
    code = "DryRunOperation"
    status = 412

    def __init__(self, message: str = "Request would have succeeded, but DryRun flag is set."):
        super().__init__(message)


class ServiceUnavailable(AwsError):
    """A duty this host does not run (no libvirtd, no iSCSI target...): says what to install."""

    code = "ServiceUnavailable"
    status = 503


class InternalError(AwsError):
    code = "InternalError"
    status = 500

    def __init__(self, message: str = "An internal error has occurred. See the server log."):
        super().__init__(message)


# --- authentication -------------------------------------------------------------------

#: Kinds of authentication failure, mapped per service to the code AWS uses there.
MISSING = "missing"            # no credentials at all
INCOMPLETE = "incomplete"      # malformed Authorization header / query auth
UNKNOWN_KEY = "unknown-key"    # access key id not found (or inactive)
BAD_SIGNATURE = "bad-signature"
SKEWED = "skewed"              # request date too far from now
EXPIRED = "expired"            # presigned URL past its expiry
BAD_PAYLOAD = "bad-payload"    # body does not hash to x-amz-content-sha256
BAD_QUERY_AUTH = "bad-query-auth"  # malformed query-string (presigned) authentication
DENIED = "denied"              # refused outright (S3's V2 presigned URL with no valid Expires)
BAD_TOKEN = "bad-token"        # a session token that is not the key's (or with a long-term key)
EXPIRED_TOKEN = "expired-token"  # temporary credentials past their expiry

_AUTH_CODES = {
    # kind: (query-API code, query-API status, S3 code, S3 status)
    MISSING: ("MissingAuthenticationToken", 403, "AccessDenied", 403),
    INCOMPLETE: ("IncompleteSignature", 400, "AuthorizationHeaderMalformed", 400),
    UNKNOWN_KEY: ("InvalidClientTokenId", 403, "InvalidAccessKeyId", 403),
    BAD_SIGNATURE: ("SignatureDoesNotMatch", 403, "SignatureDoesNotMatch", 403),
    SKEWED: ("RequestExpired", 400, "RequestTimeTooSkewed", 403),
    EXPIRED: ("RequestExpired", 400, "AccessDenied", 403),
    BAD_PAYLOAD: ("SignatureDoesNotMatch", 403, "XAmzContentSHA256Mismatch", 400),
    BAD_QUERY_AUTH: ("IncompleteSignature", 400, "AuthorizationQueryParametersError", 400),
    DENIED: ("AuthFailure", 403, "AccessDenied", 403),
    BAD_TOKEN: ("InvalidClientTokenId", 403, "InvalidToken", 400),
    EXPIRED_TOKEN: ("ExpiredToken", 403, "ExpiredToken", 400),
}


class AuthError(AwsError):
    """Authentication failed. ``kind`` is one of the module constants above."""

    status = 403

    def __init__(self, kind: str, message: str, **extra: str):
        super().__init__(message, **extra)
        self.kind = kind

    def for_service(self, service: str) -> "AuthError":
        """Set ``code``/``status`` as AWS's *service* ("ec2", "iam", "s3") reports it."""
        query_code, query_status, s3_code, s3_status = _AUTH_CODES[self.kind]
        if service == "s3":
            self.code, self.status = s3_code, s3_status
        else:
            self.code, self.status = query_code, query_status
            # EC2 reports a signature mismatch as AuthFailure; IAM and STS say
            # SignatureDoesNotMatch.
            if service == "ec2" and self.kind == BAD_SIGNATURE:
                self.code = "AuthFailure"
            # EC2 says an expired session's request has expired; IAM and STS ExpiredToken.
            if service == "ec2" and self.kind == EXPIRED_TOKEN:
                self.code, self.status = "RequestExpired", 400
        return self
