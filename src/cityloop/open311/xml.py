"""XML rendering of Open311 responses.

The spec's XML is the JSON turned into elements: an object's keys become child elements, and a
list becomes a container whose children take the singular name the spec uses
(``services/service``, ``service_requests/request``, ``errors/error``...). One generic renderer
driven by that table keeps XML and JSON from drifting apart: both come from the same dicts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

ITEM_NAMES: Mapping[str, str] = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "notes": "note",
    "endpoints": "endpoint",
    "formats": "format",
    "service_request_updates": "request_update",
}
"""Container element -> item element, as the spec and mySociety's extension name them."""

DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'

# Characters XML 1.0 cannot carry at all (not even escaped). A citizen's description may hold
# one (a pasted control character); dropping it beats serving a document no client can parse.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))


def _fill(element: ET.Element, name: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for key, child in value.items():
            _fill(ET.SubElement(element, str(key)), str(key), child)
    elif isinstance(value, list | tuple):
        item_name = ITEM_NAMES.get(name, "item")
        for item in value:
            _fill(ET.SubElement(element, item_name), item_name, item)
    else:
        element.text = _text(value)


def render(root: str, data: Any) -> bytes:
    """``data`` (dicts, lists, scalars) as a UTF-8 XML document whose root is ``root``."""
    element = ET.Element(root)
    _fill(element, root, data)
    return DECLARATION + ET.tostring(element, encoding="unicode").encode("utf-8")
