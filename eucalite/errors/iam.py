"""IAM (Eucalyptus "Euare") and STS error codes, one named class each.

Accounts, users and access keys raise these (:mod:`eucalite.accounts`), whether the caller
is the CLI, the console or, later, the IAM Query API. Codes every Query API shares are in
:mod:`eucalite.errors`. Statuses are IAM's.
"""
from __future__ import annotations

from . import AwsError


class EntityAlreadyExists(AwsError):
    code = "EntityAlreadyExists"
    status = 409


class LimitExceeded(AwsError):
    code = "LimitExceeded"
    status = 409


class NoSuchEntity(AwsError):
    code = "NoSuchEntity"
    status = 404


class ValidationError(AwsError):
    code = "ValidationError"
    status = 400


class MalformedPolicyDocument(AwsError):
    code = "MalformedPolicyDocument"
    status = 400


class DeleteConflict(AwsError):
    code = "DeleteConflict"
    status = 409


class AccessDenied(AwsError):
    code = "AccessDenied"
    status = 403


class PasswordPolicyViolation(AwsError):
    code = "PasswordPolicyViolation"
    status = 400


class InvalidAuthorizationMessageException(AwsError):
    """STS DecodeAuthorizationMessage given a message it did not make (or for another
    account)."""

    code = "InvalidAuthorizationMessageException"
    status = 400


class InvalidInput(AwsError):
    """An input IAM cannot use (a policy ARN that is not one, a bad simulation input)."""

    code = "InvalidInput"
    status = 400
