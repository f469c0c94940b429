"""Building S3 response documents: repeated sibling elements, S3's namespace, timestamps."""
from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from ..xmlutil import S3_NAMESPACE, text


def root(tag: str) -> ET.Element:
    return ET.Element(tag, xmlns=S3_NAMESPACE)


def add(parent: ET.Element, tag: str, value: Any = None, **children: Any) -> ET.Element:
    """Append <tag>value</tag> (or <tag> with *children* in order, None ones left out)."""
    element = ET.SubElement(parent, tag)
    if value is not None:
        element.text = text(value)
    for name, child in children.items():
        if child is not None:
            add(element, name, child)
    return element


def owner(parent: ET.Element, canonical_id: str, display_name: str, tag: str = "Owner"):
    return add(parent, tag, ID=canonical_id, DisplayName=display_name)
