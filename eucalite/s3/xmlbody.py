"""Reading S3 request bodies that are XML (ACLs, CORS, lifecycle, tagging, delete, ...).

:func:`parse` returns the root element with every namespace stripped from tags, so callers
match plain names (``Rule``, ``ID``); anything that is not well-formed XML with the expected
root is ``MalformedXML``, as S3 reports it. Bodies are small (S3 caps these at a few MB); the
adapter bounds them before they reach here.

The bytes are decoded here, not by the XML parser: a declared encoding Python's codecs do not
know, or know as something other than a text encoding (``foo``, ``rot13``, ``utf-7``), made
the parser raise errors of every kind. UTF-8 (the default), ASCII, ISO-8859-1 and UTF-16
(with its byte-order mark) are read; any other declared encoding is ``MalformedXML``. So are
document type declarations: with no DTD there are no entities to expand (no billion laughs).
"""
from __future__ import annotations

import codecs
import re
from xml.etree import ElementTree as ET

from ..errors.s3 import MalformedXML

MAX_XML_BODY = 1024 * 1024

#: Declared encodings read, by their normalised name, and the codec that reads them.
ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "ascii", "ascii": "ascii",
             "iso-8859-1": "latin-1", "latin-1": "latin-1", "latin1": "latin-1",
             "utf-16": "utf-16"}
_DECLARATION = re.compile(r"""^<\?xml\s[^>]*?\bencoding\s*=\s*["']([^"']*)["']""")


def _strip(element: ET.Element) -> None:
    for node in element.iter():
        if isinstance(node.tag, str) and node.tag.startswith("{"):
            node.tag = node.tag.split("}", 1)[1]


def parse(body: bytes, root: str | None = None) -> ET.Element:
    """The document's root element, namespaces stripped; MalformedXML when it is not XML or
    its root is not *root*."""
    if not body or len(body) > MAX_XML_BODY:
        raise MalformedXML()
    text = decode(body)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise MalformedXML()
    try:
        element = ET.fromstring(text)      # a str: the parser ignores the declaration
    except ET.ParseError:
        raise MalformedXML() from None
    _strip(element)
    if root is not None and element.tag != root:
        raise MalformedXML()
    return element


def decode(body: bytes) -> str:
    """The text of an XML document: UTF-16 when it starts with that byte-order mark, else
    the (ASCII-compatible) encoding its declaration names, UTF-8 by default; MalformedXML
    for any other encoding or bytes that are not in it."""
    if body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    else:
        body = body.removeprefix(codecs.BOM_UTF8)
        declared = _DECLARATION.match(body[:256].decode("latin-1"))
        codec = ENCODINGS.get(declared.group(1).lower()) if declared else "utf-8"
        if codec is None or codec == "utf-16":      # UTF-16 needs its byte-order mark
            raise MalformedXML()
    try:
        text = body.decode(codec)
    except UnicodeDecodeError:
        raise MalformedXML() from None
    declared = _DECLARATION.match(text)
    if declared and ENCODINGS.get(declared.group(1).lower()) is None:
        raise MalformedXML()
    return text


def child_text(element: ET.Element, name: str, default: str | None = None) -> str | None:
    """Text of the first direct child *name* ('' for an empty element), else *default*."""
    child = element.find(name)
    if child is None:
        return default
    return child.text or ""
