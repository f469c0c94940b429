"""Reading S3 request bodies that are XML (ACLs, CORS, lifecycle, tagging, delete, ...).

:func:`parse` returns the root element with every namespace stripped from tags, so callers
match plain names (``Rule``, ``ID``); anything that is not well-formed XML with the expected
root is ``MalformedXML``, as S3 reports it. Bodies are small (S3 caps these at a few MB); the
adapter bounds them before they reach here.
"""
from __future__ import annotations

from xml.etree import ElementTree as ET

from ..errors import AwsError

MAX_XML_BODY = 1024 * 1024


class MalformedXML(AwsError):
    code, status = "MalformedXML", 400

    def __init__(self, message: str = "The XML you provided was not well-formed or did not "
                                      "validate against our published schema."):
        super().__init__(message)


def _strip(element: ET.Element) -> None:
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]


def parse(body: bytes, root: str | None = None) -> ET.Element:
    """The document's root element, namespaces stripped; MalformedXML when it is not XML or
    its root is not *root*."""
    if not body or len(body) > MAX_XML_BODY or b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise MalformedXML()
    try:
        element = ET.fromstring(body)
    except ET.ParseError:
        raise MalformedXML()
    _strip(element)
    if root is not None and element.tag != root:
        raise MalformedXML()
    return element


def child_text(element: ET.Element, name: str, default: str | None = None) -> str | None:
    """Text of the first direct child *name* ('' for an empty element), else *default*."""
    child = element.find(name)
    if child is None:
        return default
    return child.text or ""
