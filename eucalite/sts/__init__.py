"""The Security Token Service (STS) Query endpoint at ``/services/Tokens``, Eucalyptus'
path for it, signed under the name ``sts``.

Requests are authenticated and dispatched like IAM's (:func:`eucalite.api.serve_query`),
with STS's envelopes. Its actions register on :data:`.actions.registry` (and
DecodeAuthorizationMessage in :mod:`.actions_decode`); anything else is ``InvalidAction``.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from flask import Blueprint

from .. import api, xmlutil
from . import actions_decode  # noqa: F401
from .actions import registry

STS_PATH = "/services/Tokens"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


def response(action: str, request_id: str, result: dict | None) -> bytes:
    """``<ActionResponse><ActionResult/><ResponseMetadata/></ActionResponse>``."""
    root = ET.Element(f"{action}Response", xmlns=STS_NAMESPACE)
    if result is not None:
        root.append(xmlutil.to_element(f"{action}Result", result, item_tag="member"))
    ET.SubElement(ET.SubElement(root, "ResponseMetadata"), "RequestId").text = request_id
    return xmlutil.document(root)


def error(code: str, message: str, request_id: str, status: int) -> bytes:
    root = ET.Element("ErrorResponse", xmlns=STS_NAMESPACE)
    element = ET.SubElement(root, "Error")
    ET.SubElement(element, "Type").text = "Receiver" if status >= 500 else "Sender"
    ET.SubElement(element, "Code").text = code
    ET.SubElement(element, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return xmlutil.document(root)


protocol = api.QueryProtocol(
    service="sts",
    registry=registry,
    render=response,
    render_error=lambda failure, request_id: error(failure.code, failure.message, request_id,
                                                   failure.status),
)

blueprint = Blueprint("sts", __name__)


@blueprint.route(STS_PATH, methods=api.ALL_METHODS, strict_slashes=False)
def endpoint():
    return api.serve_query(protocol)
