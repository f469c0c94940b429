"""Errors as the service at a path writes them: the EC2 Query envelope under ``/services/``
(IAM's own under ``/services/Euare``), S3's everywhere else (Walrus' classic
``/services/Walrus`` included). Used by the HTTP front end for
its own rejections (before any app code runs) and by the app's routing-error handler."""
from __future__ import annotations

from .. import xmlutil
from ..errors import AwsError

IAM_PREFIX = "/services/Euare"
#: Eucalyptus' classic path of Walrus, under which S3 is also served path-style.
WALRUS_PATH = "/services/Walrus"

# The front end's rejections: (HTTP status, AWS code, message)
REQUEST_TIMEOUT = (400, "RequestTimeout", "Your socket connection to the server was not read "
                   "from or written to within the timeout period.")
HEADER_TOO_LARGE = (400, "RequestHeaderSectionTooLarge", "Your request header section "
                    "exceeds the maximum allowed size.")
URI_TOO_LONG = (414, "RequestURITooLong", "The request URI is too long.")
BAD_EXPECT = (417, "ExpectationFailed", "Expect: only 100-continue is supported.")
BAD_REQUEST = (400, "BadRequest", "The request is not valid HTTP/1.1")
NOT_IMPLEMENTED = (501, "NotImplemented", "A header you provided implies functionality "
                   "that is not implemented.")
SLOW_DOWN = (503, "SlowDown", "Too many connections from your address; reduce your request "
             "rate.")
INCOMPLETE_BODY = (400, "IncompleteBody", "The request body ended before all of it arrived.")
INTERNAL_ERROR = (500, "InternalError", "We encountered an internal error. Please try "
                  "again.")


def document(path: str, code: str, message: str, request_id: str) -> bytes:
    """The XML error body the service at *path* answers with."""
    if path.startswith(IAM_PREFIX):
        return xmlutil.iam_error(code, message, request_id, 400)
    if path.startswith("/services/") and not (path == WALRUS_PATH
                                              or path.startswith(WALRUS_PATH + "/")):
        if code == "SlowDown":
            code = "RequestLimitExceeded"              # EC2's name for throttling
        return xmlutil.ec2_error(code, message, request_id)
    return xmlutil.s3_error(code, message, request_id, {"Resource": path})


def exception(rejection: tuple[int, str, str]) -> AwsError:
    """One of the rejections above as the error a request body fails with (the app, which
    is reading it, answers with that code)."""
    status, code, message = rejection
    return AwsError(message, code=code, status=status)


def path_of(head: bytes) -> str:
    """The path of a request from the start of its raw head, as far as it can be read
    ("/" when it cannot): chooses the envelope of a request h11 could not parse."""
    line = head.split(b"\r\n", 1)[0].split(b"\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) < 2 or not parts[1].startswith(b"/"):
        return "/"
    path = parts[1].split(b"?", 1)[0][:1024]
    return path.decode("latin-1")


def xml_error(path: str, code: str, message: str, request_id: str) -> tuple[str, bytes]:
    """(content type, body) of a rejection in the service's XML envelope."""
    return "application/xml", document(path, code, message, request_id)
