"""CloudWatch's own error codes (the generic ones, InvalidParameterValue,
InvalidParameterCombination and MissingParameter, come from :mod:`eucalite.errors`;
ValidationError, the model-constraint error, from :mod:`eucalite.wire.errors`)."""
from __future__ import annotations

from ..errors import ClientError
from ..wire.errors import ValidationError  # noqa: F401  (CloudWatch's rules raise it too)


class InvalidNextToken(ClientError):
    code = "InvalidNextToken"


class ResourceNotFound(ClientError):
    code = "ResourceNotFound"
    status = 404


class LimitExceeded(ClientError):
    code = "LimitExceeded"


class InvalidFormat(ClientError):
    code = "InvalidFormat"
