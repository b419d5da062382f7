"""Open311 GeoReport v2 under /open311/v2: JSON and XML, errors as the spec's list of {code, description}."""

from __future__ import annotations

import re
from contextlib import aclosing
from typing import Annotated
from urllib.parse import unquote_to_bytes

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse

from api.deps import Connection
from api.open311_format import FORMATS, answer, error_answer
from gis.errors import GridgovError, InvalidInput, NotFound
from gis.intake import open311

router = APIRouter(prefix="/open311/v2", tags=["open311"])
_ATTRIBUTE = re.compile(r"^attribute\[(.+)\]$")

# --- how the OpenAPI document describes GeoReport v2 (the handlers read the raw query and form) ---------------

Format = Annotated[str, Path(description="Response format: json or xml", json_schema_extra={"enum": list(FORMATS)})]
Name = Annotated[str, Path(description="The identifier followed by .json or .xml",
                           json_schema_extra={"pattern": r"^[^/]+\.(json|xml)$"})]
_XML = {"schema": {"type": "string", "description": "The same answer in GeoReport v2 XML"}}
_LIST = {"application/json": {"schema": {"type": "array", "items": {"type": "object"}}}, "text/xml": _XML}
ANSWERS = {200: {"content": {"application/json": {}, "text/xml": _XML}}}
LIST_ANSWERS = {200: {"content": _LIST}}
REQUEST_FORM = {
    "type": "object",
    "required": ["api_key", "service_code"],
    "properties": {
        "api_key": {"type": "string", "description": "Issued by the administrator (gridgov complaints api-key)"},
        "service_code": {"type": "string", "description": "A category code of GET services"},
        "lat": {"type": "number", "description": "Latitude, with long; or give address_string"},
        "long": {"type": "number", "description": "Longitude, with lat"},
        "address_string": {"type": "string", "description": "The address, geocoded when there are no coordinates"},
        "crs": {"type": "string", "default": "EPSG:4326",
                "description": "Coordinate system of lat/long: EPSG:4326, EPSG:4490, a CGCS2000 Gauss-Kruger zone, "
                               "GCJ-02 or BD-09"},
        "description": {"type": "string", "maxLength": 4000},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "phone": {"type": "string"},
        "email": {"type": "string"},
        "device_id": {"type": "string"},
        "account_id": {"type": "string"},
        "media_url": {"type": "string"},
        "requested_datetime": {"type": "string", "format": "date-time"},
        "extensions": {"type": "string", "enum": ["true", "false"],
                       "description": "true: the answer's extended_attributes.similar_requests lists the likely "
                                      "duplicates of the request (public view, score only)"},
        "join_service_request_id": {"type": "string", "pattern": "^[0-9]{1,18}$",
                                    "description": "An open request this one repeats (one of its similar_requests): "
                                                   "stored, and joined to that request's ticket (居民附议/重复反映)"},
    },
    "patternProperties": {r"^attribute\[.+\]$": {
        "type": "string", "description": "attribute[CODE]: the service definition's attributes"}},
}
REQUEST_BODY = {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": REQUEST_FORM},
                                              "multipart/form-data": {"schema": REQUEST_FORM}}}
QUERY_PARAMETERS = [
    {"name": "service_request_id", "in": "query", "required": False,
     "description": "Comma-separated request ids (the other filters are then ignored)", "schema": {"type": "string"}},
    {"name": "service_code", "in": "query", "required": False, "description": "Comma-separated service codes",
     "schema": {"type": "string"}},
    {"name": "start_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"}},
    {"name": "end_date", "in": "query", "required": False, "schema": {"type": "string", "format": "date-time"}},
    {"name": "status", "in": "query", "required": False, "description": "open, closed or both (comma-separated)",
     "schema": {"type": "string"}},
]
_TIME = {"type": "string", "format": "date-time"}
FILTER_PARAMETERS = [
    {"name": "updated_after", "in": "query", "required": False, "schema": _TIME,
     "description": "Requests updated at or after this time"},
    {"name": "updated_before", "in": "query", "required": False, "schema": _TIME,
     "description": "Requests updated at or before this time"},
    {"name": "lat", "in": "query", "required": False, "schema": {"type": "number", "minimum": -90, "maximum": 90},
     "description": "With long: requests whose public (snapped) place lies within radius of this point"},
    {"name": "long", "in": "query", "required": False,
     "schema": {"type": "number", "minimum": -180, "maximum": 180}},
    {"name": "radius", "in": "query", "required": False, "description": "Metres around lat/long",
     "schema": {"type": "number", "minimum": open311.RADIUS_MIN_M, "maximum": open311.RADIUS_MAX_M,
                "default": open311.DEFAULT_RADIUS_M}},
    {"name": "extensions", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
     "description": "true: extended_attributes with the detailed status and the public history (notes)"},
]
LIST_PARAMETERS = QUERY_PARAMETERS + FILTER_PARAMETERS + [
    {"name": "page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": open311.PAGE_MAX, "default": 1}},
    {"name": "page_size", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": open311.PAGE_SIZE_MAX,
                "default": open311.PAGE_SIZE_MAX}},
    {"name": "just_count", "in": "query", "required": False, "schema": {"type": "boolean", "default": False},
     "description": "true: only {count}, the size of the whole selection"},
]
EXPORT_PARAMETERS = [p for p in QUERY_PARAMETERS if p["name"] != "service_request_id"] + FILTER_PARAMETERS


def _split(name: str) -> tuple[str, str]:
    """'E0601.json' → ('E0601', 'json'); an unknown format is an error in JSON."""
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise NotFound(f"unknown format in {name!r}: use .json or .xml")
    return stem, fmt


UNKNOWN_FORMAT = "unknown format: use .json or .xml"


@router.get("/discovery.{fmt}", responses=ANSWERS)
async def discovery(fmt: Format, request: Request) -> Response:
    """GeoReport v2 discovery: the endpoint, its formats and how API keys are issued; 404 for a format other than json
    or xml."""
    if fmt not in FORMATS:
        return error_answer(NotFound(UNKNOWN_FORMAT), "json")
    base = str(request.url_for("discovery", fmt=fmt)).rsplit("/", 1)[0]
    return answer(open311.discovery(base), fmt, "discovery", None)


@router.get("/services.{fmt}", responses=LIST_ANSWERS)
async def services(fmt: Format, conn: Connection) -> Response:
    """The active complaint categories as GeoReport v2 services; 404 for a format other than json or xml."""
    if fmt not in FORMATS:
        return error_answer(NotFound(UNKNOWN_FORMAT), "json")
    return answer(await open311.services(conn), fmt, "services", "service")


@router.get("/services/{name}", responses=ANSWERS)
async def service_definition(name: Name, conn: Connection) -> Response:
    """The attributes a request of one service may carry (`{service_code}.json` or `.xml`); 404 for an unknown or
    inactive service or an unknown format, as the spec's error list."""
    fmt = "json"
    try:
        code, fmt = _split(name)
        return answer(await open311.service_definition(conn, code), fmt, "service_definition", None)
    except GridgovError as error:
        return error_answer(error, fmt)


@router.get("/requests.{fmt}", responses=LIST_ANSWERS, openapi_extra={"parameters": LIST_PARAMETERS})
async def list_requests(fmt: Format, request: Request, conn: Connection) -> Response:
    """Service requests by ids, service codes, a time window (the last 90 days by default), status, update time and
    a circle, page by page, in the public view; `just_count=true` answers the count only, `extensions=true` adds the
    detailed status and public history; 400 for a malformed filter, 404 for an unknown format, as the spec's error
    list."""
    if fmt not in FORMATS:
        return error_answer(NotFound(UNKNOWN_FORMAT), "json")
    try:
        found = await open311.query_requests(conn, dict(request.query_params))
        return answer(found, fmt, "service_requests", "request")
    except GridgovError as error:
        return error_answer(error, fmt)


_CHARSET = re.compile(r";\s*charset\s*=\s*\"?([^\";\s]+)", re.IGNORECASE)
_CHARSETS = {"utf-8": "utf-8", "utf8": "utf-8", "us-ascii": "utf-8", "ascii": "utf-8", "gbk": "gb18030",
             "gb2312": "gb18030", "gb18030": "gb18030", "cp936": "gb18030", "big5": "big5"}
"""Declared form charsets read, and the codec that reads each (GB18030 reads GBK and GB2312 text alike)."""
MAX_FORM_FIELDS = 1000


async def _form_items(request: Request, content_type: str) -> list[tuple[str, object]]:
    """The form's fields decoded with the charset it declares (UTF-8 when none), strictly: a GBK form is read as
    GBK, and bytes that are not text in that charset are a 400, never stored as mojibake."""
    declared = _CHARSET.search(content_type)
    name = declared.group(1).strip().lower() if declared else "utf-8"
    codec = _CHARSETS.get(name)
    if codec is None:
        raise InvalidInput(f"不支持表单字符集 {name[:40]!r}；请使用 UTF-8 或 GBK")
    if not content_type.startswith("application/x-www-form-urlencoded"):
        form = await request.form()  # multipart: Starlette reads each part in the declared charset
        return list(form.multi_items())
    pieces = [piece for piece in (await request.body()).split(b"&") if piece]
    if len(pieces) > MAX_FORM_FIELDS:
        raise InvalidInput(f"表单字段超过 {MAX_FORM_FIELDS} 个")
    try:
        return [tuple(unquote_to_bytes(part.replace(b"+", b" ")).decode(codec)
                      for part in (piece.split(b"=", 1) + [b""])[:2]) for piece in pieces]
    except UnicodeDecodeError:
        raise InvalidInput(f"表单内容不是有效的 {name.upper()} 编码文本，请检查 Content-Type 中的 charset") from None


@router.post("/requests.{fmt}", responses={**LIST_ANSWERS, 403: {"description": "api_key missing or unknown"}},
             openapi_extra={"requestBody": REQUEST_BODY})
async def create_request(fmt: Format, request: Request, conn: Connection) -> Response:
    """Submit a service request, form-encoded, with an api_key; it is stored and placed as a complaint. With
    `extensions=true` the answer lists the request's likely duplicates (extended_attributes.similar_requests);
    `join_service_request_id` joins an open one of them instead of opening a ticket of its own. Errors in the
    spec's order: 403 for a missing or unknown key, then 400 for a bad service code, location, attribute or other field;
    404 for an unknown format."""
    if fmt not in FORMATS:
        return error_answer(NotFound(UNKNOWN_FORMAT), "json")
    try:
        content_type = request.headers.get("content-type", "")
        if content_type and not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            raise InvalidInput("send the request form-encoded (application/x-www-form-urlencoded)")
        fields, attributes = {}, {}
        for key, value in await _form_items(request, content_type):
            if not isinstance(value, str):
                continue  # uploaded files: GeoReport v2 takes media as media_url
            match = _ATTRIBUTE.match(key)
            if match:
                attributes[match.group(1)] = value
            else:
                fields[key] = value
        if "extensions" not in fields and "extensions" in request.query_params:
            fields["extensions"] = request.query_params["extensions"]  # as GET requests takes it
        created = await open311.create_request(conn, fields, attributes)
        return answer([created], fmt, "service_requests", "request")
    except GridgovError as error:
        return error_answer(error, fmt)


ExportFormat = Annotated[str, Path(description="json or csv",
                                   json_schema_extra={"enum": list(open311.EXPORT_FORMATS)})]
EXPORT_TYPES = {"json": "application/json; charset=utf-8", "csv": "text/csv; charset=utf-8"}


@router.get("/requests/export.{fmt}", response_class=StreamingResponse,
            responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
            openapi_extra={"parameters": EXPORT_PARAMETERS})
async def export_requests(fmt: ExportFormat, request: Request, conn: Connection) -> Response:
    """The bulk export: every request of one period (start_date to end_date, at most 366 days) as one file, JSON or
    CSV, streamed, oldest first, with the same filters and the same public view as GET requests; 400 for a missing
    or too long period or a malformed filter, 404 for a format other than json or csv."""
    try:
        selection = open311.parse_export(dict(request.query_params), fmt)
    except GridgovError as error:
        return error_answer(error, "json")

    async def body():
        # closed however the answer ends (a client gone mid-file too), which ends the export's transaction
        async with aclosing(open311.export_requests(conn, selection, fmt)) as chunks:
            async for chunk in chunks:
                yield chunk

    return StreamingResponse(body(), media_type=EXPORT_TYPES[fmt],
                             headers={"Content-Disposition": f'attachment; filename="open311-requests.{fmt}"'})


@router.get("/requests/{name}", responses=LIST_ANSWERS,
            openapi_extra={"parameters": [p for p in FILTER_PARAMETERS if p["name"] == "extensions"]})
async def get_request(name: Name, request: Request, conn: Connection) -> Response:
    """One service request (`{id}.json` or `.xml`) in the public view, with `extensions=true` its detailed status
    and public history; 404 for an unknown request or format, 400 for a malformed flag, as the spec's error list."""
    fmt = "json"
    try:
        request_id, fmt = _split(name)
        extensions = open311.parse_flag(dict(request.query_params), "extensions")
        return answer(await open311.get_request(conn, request_id, extensions), fmt, "service_requests", "request")
    except GridgovError as error:
        return error_answer(error, fmt)


@router.get("/tokens/{name}", responses=LIST_ANSWERS)
async def token(name: Name, conn: Connection) -> Response:
    """The service request id a submission token stands for (`{token}.json` or `.xml`); 404 for an unknown token or
    format."""
    fmt = "json"
    try:
        token_value, fmt = _split(name)
        return answer(await open311.token_lookup(conn, token_value), fmt, "service_requests", "request")
    except GridgovError as error:
        return error_answer(error, fmt)
