"""A service's API model, read from botocore's data: its operations, their input and output
shapes (with the constraints requests are checked against) and its modeled errors.

botocore's own :class:`botocore.model.ServiceModel` gives the shapes; :class:`ServiceModel`
adds what a server needs that a client does not: the error shape AWS answers for an error
code (``MissingParameter`` is CloudWatch's ``MissingRequiredParameterException``), and the
protocol settings (JSON target prefix, XML namespace, API version).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import botocore.loaders
import botocore.model
from botocore.model import OperationModel, Shape


@dataclass(frozen=True)
class ErrorShape:
    """One modeled error: its shape name (awsJson/CBOR's ``__type``), the code the Query
    protocol (and ``x-amzn-query-error``) gives it, and its HTTP status."""

    name: str
    code: str
    status: int
    sender_fault: bool


class ServiceModel:
    """One service's botocore model (``service-2``), as a server reads it."""

    def __init__(self, raw: dict, name: str):
        self.name = name
        self.botocore = botocore.model.ServiceModel(raw, service_name=name)
        metadata = raw["metadata"]
        self.api_version: str = metadata["apiVersion"]
        self.target_prefix: str = metadata.get("targetPrefix", "")
        self.xml_namespace: str = metadata.get("xmlNamespace", "")
        self.signing_name: str = metadata.get("signingName", metadata["endpointPrefix"])
        self.title: str = metadata.get("serviceAbbreviation", metadata["serviceId"])
        self.protocols: list[str] = metadata.get("protocols", [metadata["protocol"]])
        self.operation_names: frozenset[str] = frozenset(self.botocore.operation_names)
        errors = {}
        for shape_name, shape in raw["shapes"].items():
            if shape.get("exception"):
                error = shape.get("error", {})
                errors[error.get("code", shape_name)] = ErrorShape(
                    shape_name, error.get("code", shape_name), error.get("httpStatusCode", 400),
                    error.get("senderFault", error.get("httpStatusCode", 400) < 500))
        #: Modeled errors by their Query code (``MissingParameter``, ``ValidationError``…).
        self.errors: dict[str, ErrorShape] = errors

    def operation(self, name: str) -> OperationModel | None:
        """The operation called *name*, or None when the model has none by that name."""
        if name not in self.operation_names:
            return None
        return self.botocore.operation_model(name)

    def error(self, code: str, operation: OperationModel | None = None) -> ErrorShape | None:
        """The modeled error whose Query code is *code*, if the model has one. Where
        several shapes share a code (CloudWatch's ``ResourceNotFound`` and
        ``DashboardNotFoundError``), the one *operation* declares is preferred."""
        if operation is not None:
            for shape in operation.error_shapes:
                if shape.metadata.get("error", {}).get("code", shape.name) == code:
                    return ErrorShape(shape.name, code, self.errors[code].status,
                                      self.errors[code].sender_fault)
        return self.errors.get(code)


def query_name(name: str, member: Shape) -> str:
    """The Query parameter (and XML element) name of structure member *name*: its own
    serialized name, except a flattened list's, which its items name when they have one
    (``Item.1``, ``Item.2``; ``<Item/><Item/>``), as botocore writes and reads them."""
    if member.type_name == "list" and member.serialization.get("flattened"):
        item_name = member.member.serialization.get("name")
        if item_name:
            return item_name
    return member.serialization.get("name", name)


@functools.lru_cache(maxsize=None)
def load(name: str) -> ServiceModel:
    """The newest model botocore holds for service *name* (``cloudwatch``); loaded once."""
    loader = botocore.loaders.create_loader()
    return ServiceModel(loader.load_service_model(name, "service-2"), name)
