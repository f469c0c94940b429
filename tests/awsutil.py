"""Asserting AWS errors: the one place that knows where an error's code is, for a boto3 call
(its ClientError's ``Error.Code``) and for a raw HTTP answer (the ``<Code>`` of its XML
error body: EC2's ``<Response><Errors><Error>``, S3's and IAM's ``<Error>``)."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def failure(failing, *args, **kwargs) -> tuple[str, int, dict]:
    """(Error.Code, HTTP status, whole error response) of a boto3 ClientError.

    *failing* is either the boto3 call, run here as ``failing(*args, **kwargs)`` and which
    must raise a ClientError, or what ``pytest.raises(ClientError)`` caught."""
    if isinstance(failing, pytest.ExceptionInfo):
        assert not args and not kwargs
        error = failing.value
    else:
        with pytest.raises(ClientError) as caught:
            failing(*args, **kwargs)
        error = caught.value
    response = error.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response)


def error_code(failing, *args, **kwargs) -> str:
    """The Error.Code of a boto3 call that must fail, or of a caught ClientError (see
    :func:`failure`)."""
    return failure(failing, *args, **kwargs)[0]


def xml_error_code(answer) -> str | None:
    """The ``<Code>`` of an AWS XML error body (a requests Response, str or bytes); None
    when the body holds no code."""
    if isinstance(answer, bytes):
        text = answer.decode("utf-8", "replace")
    else:
        text = answer if isinstance(answer, str) else answer.text
    if "<Code>" not in text:
        return None
    return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
