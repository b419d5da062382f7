"""Open311 GeoReport v2 on the wire: the payloads of gis.intake.open311 as JSON or XML with the spec's MIME
types, and every refusal as the spec's error list, `[{code, description}]`, whose code is the HTTP status the
one error table gives (api/errors.py)."""

from __future__ import annotations

import json
from xml.etree import ElementTree

from fastapi import Response

from api.errors import status_for
from gis.errors import GridgovError

FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
"""The formats a GeoReport v2 path may end with, and the media type of each."""

_XML_ITEM_NAMES = {"values": "value", "attributes": "attribute", "endpoints": "endpoint", "formats": "format",
                   "keywords": "keyword", "notes": "note", "media_urls": "media_url"}
"""The element of each item of a list-valued field in XML (others are `item`)."""


def _xml_value(parent: ElementTree.Element, name: str, value) -> None:
    node = ElementTree.SubElement(parent, name)
    if isinstance(value, list):
        item_name = _XML_ITEM_NAMES.get(name, "item")
        for item in value:
            _xml_value(node, item_name, item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(node, key, inner)
    elif isinstance(value, bool):
        node.text = "true" if value else "false"
    elif value is not None:
        node.text = str(value)


def render(payload, fmt: str, root: str, item: str | None) -> bytes:
    """The payload as JSON, or as XML under `root` (each list item as `item`)."""
    if fmt == "json":
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    top = ElementTree.Element(root)
    if isinstance(payload, list):
        for entry in payload:
            element = ElementTree.SubElement(top, item)
            for key, value in entry.items():
                _xml_value(element, key, value)
    else:
        for key, value in payload.items():
            _xml_value(top, key, value)
    return b'<?xml version="1.0" encoding="utf-8"?>' + ElementTree.tostring(top, encoding="utf-8")


def answer(payload, fmt: str, root: str, item: str | None) -> Response:
    """A 200 answer in the asked format."""
    return Response(render(payload, fmt, root, item), media_type=FORMATS[fmt])


def error_answer(error: GridgovError, fmt: str) -> Response:
    """A refusal as the spec's error list, in the asked format (JSON when the format itself was not known)."""
    fmt = fmt if fmt in FORMATS else "json"
    status = status_for(error)
    body = render([{"code": status, "description": str(error)}], fmt, "errors", "error")
    return Response(body, status_code=status, media_type=FORMATS[fmt])
