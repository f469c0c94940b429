"""CloudWatch's own error codes (the generic ones, InvalidParameterValue,
InvalidParameterCombination and MissingParameter, come from :mod:`eucalite.errors`)."""
from __future__ import annotations

from ..errors import ClientError


class ValidationError(ClientError):
    code = "ValidationError"


class InvalidNextToken(ClientError):
    code = "InvalidNextToken"


class ResourceNotFound(ClientError):
    code = "ResourceNotFound"
    status = 404


class LimitExceeded(ClientError):
    code = "LimitExceeded"


class InvalidFormat(ClientError):
    code = "InvalidFormat"
