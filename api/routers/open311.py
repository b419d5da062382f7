"""Open311 GeoReport v2 under /open311/v2: JSON and XML, errors as the spec's list of {code, description}."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response

from api.deps import Connection
from gis.errors import GridgovError
from gis.intake import open311
from gis.intake.open311 import FORMATS, Open311Error

router = APIRouter(prefix="/open311/v2", tags=["open311"])
_ATTRIBUTE = re.compile(r"^attribute\[(.+)\]$")


def _split(name: str) -> tuple[str, str]:
    """'E0601.json' → ('E0601', 'json'); an unknown format is an error in JSON."""
    stem, dot, fmt = name.rpartition(".")
    if not dot or fmt not in FORMATS:
        raise Open311Error(404, f"unknown format in {name!r}: use .json or .xml")
    return stem, fmt


def _answer(payload, fmt: str, root: str, item: str | None, status: int = 200) -> Response:
    return Response(open311.render(payload, fmt, root, item), status_code=status, media_type=FORMATS[fmt])


def _error(error: Exception, fmt: str) -> Response:
    if not isinstance(error, Open311Error):
        from api.errors import status_for

        error = Open311Error(status_for(error), str(error))
    fmt = fmt if fmt in FORMATS else "json"
    return Response(open311.render_error(error, fmt), status_code=error.status, media_type=FORMATS[fmt])


@router.get("/discovery.{fmt}")
async def discovery(fmt: str, request: Request) -> Response:
    if fmt not in FORMATS:
        return _error(Open311Error(404, "unknown format: use .json or .xml"), "json")
    base = str(request.url_for("discovery", fmt=fmt)).rsplit("/", 1)[0]
    return _answer(open311.discovery(base), fmt, "discovery", None)


@router.get("/services.{fmt}")
async def services(fmt: str, conn: Connection) -> Response:
    if fmt not in FORMATS:
        return _error(Open311Error(404, "unknown format: use .json or .xml"), "json")
    return _answer(await open311.services(conn), fmt, "services", "service")


@router.get("/services/{name}")
async def service_definition(name: str, conn: Connection) -> Response:
    fmt = "json"
    try:
        code, fmt = _split(name)
        return _answer(await open311.service_definition(conn, code), fmt, "service_definition", None)
    except (Open311Error, GridgovError) as error:
        return _error(error, fmt)


@router.get("/requests.{fmt}")
async def list_requests(fmt: str, request: Request, conn: Connection) -> Response:
    if fmt not in FORMATS:
        return _error(Open311Error(404, "unknown format: use .json or .xml"), "json")
    try:
        found = await open311.query_requests(conn, dict(request.query_params))
        return _answer(found, fmt, "service_requests", "request")
    except (Open311Error, GridgovError) as error:
        return _error(error, fmt)


@router.post("/requests.{fmt}")
async def create_request(fmt: str, request: Request, conn: Connection) -> Response:
    if fmt not in FORMATS:
        return _error(Open311Error(404, "unknown format: use .json or .xml"), "json")
    try:
        content_type = request.headers.get("content-type", "")
        if content_type and not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            raise Open311Error(400, "send the request form-encoded (application/x-www-form-urlencoded)")
        form = await request.form()
        fields, attributes = {}, {}
        for key, value in form.multi_items():
            if not isinstance(value, str):
                continue  # uploaded files: GeoReport v2 takes media as media_url
            match = _ATTRIBUTE.match(key)
            if match:
                attributes[match.group(1)] = value
            else:
                fields[key] = value
        answer = await open311.create_request(conn, fields, attributes)
        return _answer([answer], fmt, "service_requests", "request")
    except (Open311Error, GridgovError) as error:
        return _error(error, fmt)


@router.get("/requests/{name}")
async def get_request(name: str, conn: Connection) -> Response:
    fmt = "json"
    try:
        request_id, fmt = _split(name)
        return _answer(await open311.get_request(conn, request_id), fmt, "service_requests", "request")
    except (Open311Error, GridgovError) as error:
        return _error(error, fmt)


@router.get("/tokens/{name}")
async def token(name: str, conn: Connection) -> Response:
    fmt = "json"
    try:
        token_value, fmt = _split(name)
        return _answer(await open311.token_lookup(conn, token_value), fmt, "service_requests", "request")
    except (Open311Error, GridgovError) as error:
        return _error(error, fmt)
