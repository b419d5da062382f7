"""The field app over HTTP (the grid worker's phone): who is signed in with the box of their grids, the address
at a point, and reports of new issues (巡查上报) stored once per client-generated id."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from api.deps import Connection, Engine
from api.security import SignedIn
from gis.errors import InvalidInput
from gis.intake import field
from gis.tickets.workflow import MAX_PHOTO_BYTES

router = APIRouter(prefix="/field", tags=["field"])

REPORT_FIELDS = {
    "client_id": {"type": "string", "format": "uuid", "description": "Made by the phone; a retry sends it again"},
    "category_code": {"type": "string", "description": "A code of GET /map/categories.json"},
    "lon": {"type": "number", "description": "WGS-84 longitude (GPS or a tap on the map)"},
    "lat": {"type": "number", "description": "WGS-84 latitude"},
    "description": {"type": "string", "maxLength": field.MAX_DESCRIPTION},
    "address": {"type": "string", "description": "When empty, composed from the layers at the point"},
    "reported_at": {"type": "string", "format": "date-time", "description": "When it was made (queued offline)"},
    "join_ticket_id": {"type": "integer", "minimum": 1,
                       "description": "An open ticket of GET /complaints/similar this report repeats: the report is "
                                      "stored and joins it (居民附议/重复反映)"},
}
REPORT_JSON = {"type": "object", "required": ["client_id", "category_code", "lon", "lat"],
               "properties": REPORT_FIELDS}
REPORT_FORM = {"type": "object", "required": ["client_id", "category_code", "lon", "lat"],
               "properties": {**REPORT_FIELDS, "photos": {"type": "array",
                                                          "items": {"type": "string", "format": "binary"}}}}
REPORT_BODY = {"required": True, "content": {"application/json": {"schema": REPORT_JSON},
                                             "multipart/form-data": {"schema": REPORT_FORM}}}
REPORT_ANSWER = {"type": "object", "properties": {
    "created": {"type": "boolean"}, "exists": {"type": "boolean"}, "complaint_id": {"type": "integer"},
    "ticket_id": {"type": ["integer", "null"]}, "joined_ticket_id": {"type": ["integer", "null"]},
    "message": {"type": "string"}}}


@router.get("/me")
async def me(principal: SignedIn, conn: Connection) -> dict:
    """The signed-in person: name, role, the units of their scope and the box around them."""
    return await field.field_profile(conn, principal)


@router.get("/place", responses={404: {"description": "The point lies outside the city"}})
async def place(
    principal: SignedIn, conn: Connection,
    lon: Annotated[float, Query(description="Longitude, WGS-84 degrees")],
    lat: Annotated[float, Query(description="Latitude, WGS-84 degrees")],
) -> dict:
    """The street, community, grid, compound and building at a point, the address they compose, and whether the
    point lies in the caller's scope (a report is accepted only there)."""
    return await field.place_at(conn, principal, lon, lat)


async def _report_values(request: Request) -> tuple[dict, list[field.Photo]]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        try:
            values = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("请求体不是有效的 JSON") from None
        if not isinstance(values, dict):
            raise InvalidInput("请求体须为 JSON 对象")
        return values, []
    if not content_type.startswith("multipart/form-data"):
        raise InvalidInput("请以 JSON（application/json）或表单（multipart/form-data，附照片）提交上报")
    form = await request.form()
    values, photos = {}, []
    for key, value in form.multi_items():
        if isinstance(value, str):
            values[key] = value
        elif key == "photos":
            content = await value.read(MAX_PHOTO_BYTES + 1)
            photos.append(field.Photo(value.filename or "photo", content))
        else:
            raise InvalidInput(f"未知的文件字段 {key[:40]!r}；照片请放在 photos 字段")
    return values, photos


@router.post("/reports", status_code=201, openapi_extra={"requestBody": REPORT_BODY}, responses={
    200: {"description": "This client_id was stored before: nothing new is stored",
          "content": {"application/json": {"schema": REPORT_ANSWER}}},
    201: {"description": "Stored: the complaint and its ticket",
          "content": {"application/json": {"schema": REPORT_ANSWER}}},
    404: {"description": "The place lies outside the city or outside the caller's grids"},
})
async def report(request: Request, principal: SignedIn, engine: Engine) -> JSONResponse:
    """Report a new issue from the field (巡查上报): placed, routed and ticketed as an Open311 request is, with
    the signed-in person as the reporter and `patrol` as the source. The same client_id twice stores one
    complaint; the second answer (200) says it exists."""
    values, photos = await _report_values(request)
    submitted = field.parse_report(values)
    submitted.photos = photos
    async with engine.begin() as conn:
        answer = await field.submit_report(conn, principal, submitted)
    return JSONResponse(answer, status_code=201 if answer["created"] else 200)
