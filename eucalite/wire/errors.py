"""The errors the wire layer itself answers, beside :mod:`eucalite.errors`' common ones.

:class:`ValidationError` is the model-constraint error of AWS's Coral services (its Query
code is ``ValidationError``; CloudWatch models it as ``ValidationException``). The two
protocol errors exist only in awsJson and RPC v2 CBOR, where a body that is not a document
of the input's shape is ``SerializationException`` and an operation the service does not
have ``UnknownOperationException``; :attr:`WireError.protocol_level` tells the renderer not
to give them an ``x-amzn-query-error`` header (they have no Query counterpart).
"""
from __future__ import annotations

from ..errors import ClientError


class ValidationError(ClientError):
    """Values breaking the model's constraints; the message lists each (see
    :func:`eucalite.wire.validate.validate`)."""

    code = "ValidationError"


class WireError(ClientError):
    """An error of the awsJson / RPC v2 CBOR envelope itself."""

    protocol_level = True


class SerializationException(WireError):
    code = "SerializationException"


class UnknownOperationException(WireError):
    code = "UnknownOperationException"
