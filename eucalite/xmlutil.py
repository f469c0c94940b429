"""XML rendering for AWS responses and error envelopes.

:func:`to_element` turns plain Python data into elements: a dict becomes child elements in
insertion order, a list becomes repeated ``<item>`` children (the EC2 convention; S3 passes
its own ``item_tag`` or repeats the parent tag), booleans become ``true``/``false``, datetimes
ISO 8601 with milliseconds and ``Z``, and ``None`` is left out. A :class:`Serialised` value
is content already written (:func:`serialised`), copied as is.

:func:`document` is where every response body and error envelope becomes bytes, so it is
also where characters XML 1.0 cannot carry at all (control characters, lone surrogates)
are replaced: whatever a stored description, tag, key or echoed parameter holds, the
client's XML parser reads the answer.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any
from xml.etree import ElementTree as ET

from . import utctime

EC2_NAMESPACE = "http://ec2.amazonaws.com/doc/2016-11-15/"
IAM_NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

#: Characters XML 1.0 cannot represent, not even as character references.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
#: What :func:`document` writes in their place: U+FFFD REPLACEMENT CHARACTER.
REPLACEMENT = "\ufffd"


def representable(value: str) -> bool:
    """Whether XML 1.0 can carry *value* as it is (APIs refuse input that it cannot)."""
    return _NOT_XML.search(value) is None


def text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        value = utctime.naive(value)
        return value.isoformat(timespec="milliseconds") + "Z"     # milliseconds truncated
    return str(value)


def to_element(tag: str, value: Any, item_tag: str = "item") -> ET.Element:
    element = ET.Element(tag)
    fill(element, value, item_tag)
    return element


def fill(element: ET.Element, value: Any, item_tag: str = "item") -> None:
    """Append *value*'s XML form to *element* (see module docstring)."""
    if isinstance(value, dict):
        for key, child in value.items():
            if child is None:
                continue
            element.append(to_element(key, child, item_tag))
    elif isinstance(value, (list, tuple)):
        for child in value:
            element.append(to_element(item_tag, child, item_tag))
    elif isinstance(value, Serialised):
        # Parsed back as the tree: what XML cannot carry is replaced first (the document
        # would replace it anyway), and a CR kept as a reference so the parser keeps it.
        safe = _NOT_XML.sub(REPLACEMENT, value).replace("\r", "&#13;")
        written = ET.fromstring(f"<x>{safe}</x>")
        element.text = written.text
        element.extend(written)
    elif value is not None:
        element.text = text(value)


def document(root: ET.Element) -> bytes:
    """*root* as a UTF-8 XML document that always parses: characters XML cannot carry
    become :data:`REPLACEMENT`."""
    return _finish(ET.tostring(root, encoding="unicode"))


def _finish(body: str) -> bytes:
    """The serialised *body* as the document's bytes (see :func:`document`)."""
    try:
        encoded = body.encode("utf-8")
    except UnicodeEncodeError:                  # lone surrogates: replaced below
        encoded = None
    if encoded is None or _has_unrepresentable(body, encoded):
        encoded = _NOT_XML.sub(REPLACEMENT, body).encode("utf-8")
    # A raw CR would reach the client as LF (XML normalises line ends): as a reference it
    # stays a CR, as S3 writes it in keys. ElementTree itself never writes a CR.
    if b"\r" in encoded:
        encoded = encoded.replace(b"\r", b"&#13;")
    return XML_DECLARATION + encoded


#: The UTF-8 bytes that only :data:`_NOT_XML`'s C0 control characters encode to.
_CONTROL_BYTES = bytes(range(0x09)) + b"\x0b\x0c" + bytes(range(0x0e, 0x20))


def _has_unrepresentable(body: str, encoded: bytes) -> bool:
    """Whether *body* (a string without lone surrogates) holds a character of
    :data:`_NOT_XML`, tested on its UTF-8 *encoded* form: several times faster than the
    expression on a megabyte answer, which almost never holds one."""
    if len(encoded.translate(None, _CONTROL_BYTES)) != len(encoded):
        return True
    return not body.isascii() and (b"\xef\xbf\xbe" in encoded or b"\xef\xbf\xbf" in encoded)


def _escape(value: str) -> str:
    """Character data as ElementTree escapes it."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


class Serialised(str):
    """A value's content already written as XML by :func:`serialised`: the answer writers
    copy it as is (``<tag>content</tag>``, or ``<tag />`` when empty). An answer that
    repeats a value on every item (an instance's state, placement, groups) writes it once."""

    __slots__ = ()


def serialised(value: Any, item_tag: str = "item") -> Serialised:
    """*value*'s content (without its own tag) as :func:`query_response` writes it."""
    out: list[str] = []
    _serialise(out, "x", value, item_tag)
    written = out[0] if len(out) == 1 else "".join(out)
    return Serialised("" if written == "<x />" else written[3:-4])


def _serialise(out: list[str], tag: str, value: Any, item_tag: str) -> None:
    """Append *value* as element *tag* to *out*, exactly as ``ET.tostring(to_element(tag,
    value, item_tag))`` writes it (``<tag />`` when empty), without building the tree:
    several times faster for large answers such as DescribeInstances. The commonest
    children (strings, ints, booleans, written-ahead values, empty lists) are written in
    the parent's loop: a call per leaf was most of the cost."""
    kind = type(value)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, dict)):
        children, keep_none = value.items(), False
    elif kind is list or kind is tuple or isinstance(value, (list, tuple)):
        children, keep_none = [(item_tag, child) for child in value], True
    elif kind is Serialised:
        out.append(f"<{tag}>{value}</{tag}>" if value else f"<{tag} />")
        return
    else:
        content = text(value) if value is not None else ""
        out.append(f"<{tag}>{_escape(content)}</{tag}>" if content else f"<{tag} />")
        return
    opened = len(out)
    out.append(f"<{tag}>")
    for key, child in children:
        ctype = type(child)
        if ctype is str:
            if not child:
                out.append(f"<{key} />")
            elif "&" in child or "<" in child or ">" in child:
                out.append(f"<{key}>{_escape(child)}</{key}>")
            else:
                out.append(f"<{key}>{child}</{key}>")
        elif ctype is Serialised or (ctype is list and not child):
            out.append(f"<{key}>{child}</{key}>" if child else f"<{key} />")
        elif ctype is int:
            out.append(f"<{key}>{child}</{key}>")
        elif ctype is bool:
            out.append(f"<{key}>true</{key}>" if child else f"<{key}>false</{key}>")
        elif child is not None:
            _serialise(out, key, child, item_tag)
        elif keep_none:                             # a list's None is an empty item
            out.append(f"<{key} />")
    if len(out) == opened + 1:
        out[opened] = f"<{tag} />"
    else:
        out.append(f"</{tag}>")


def query_response(action: str, namespace: str, request_id: str, body: dict) -> bytes:
    """EC2-style ``<ActionResponse xmlns=…><requestId/>…</ActionResponse>``."""
    out = [f'<{action}Response xmlns="{_escape(namespace)}">']
    _serialise(out, "requestId", request_id, "item")
    for key, child in body.items():
        if child is not None:
            _serialise(out, key, child, "item")
    out.append(f"</{action}Response>")
    return _finish("".join(out))


def iam_response(action: str, request_id: str, result: dict | None) -> bytes:
    """IAM-style ``<ActionResponse><ActionResult/><ResponseMetadata/></ActionResponse>``."""
    root = ET.Element(f"{action}Response", xmlns=IAM_NAMESPACE)
    if result is not None:
        root.append(to_element(f"{action}Result", result, item_tag="member"))
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id
    return document(root)


def ec2_error(code: str, message: str, request_id: str) -> bytes:
    root = ET.Element("Response")
    error = ET.SubElement(ET.SubElement(root, "Errors"), "Error")
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestID").text = request_id
    return document(root)


def iam_error(code: str, message: str, request_id: str, status: int) -> bytes:
    root = ET.Element("ErrorResponse", xmlns=IAM_NAMESPACE)
    error = ET.SubElement(root, "Error")
    ET.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
    ET.SubElement(error, "Code").text = code
    ET.SubElement(error, "Message").text = message
    ET.SubElement(root, "RequestId").text = request_id
    return document(root)


def s3_error(code: str, message: str, request_id: str, extra: dict | None = None) -> bytes:
    root = ET.Element("Error")
    ET.SubElement(root, "Code").text = code
    ET.SubElement(root, "Message").text = message
    for key, value in (extra or {}).items():
        ET.SubElement(root, key).text = text(value)
    ET.SubElement(root, "RequestId").text = request_id
    ET.SubElement(root, "HostId").text = request_id
    return document(root)
