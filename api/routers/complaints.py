"""Complaint intake over HTTP: batch import of hotline exports, the review queue and placement by hand,
possible duplicates, and the placement and responsible parties of one complaint."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel

from api.audit import log_personal_read
from api.deps import Connection
from api.security import CurrentPrincipal
from gis.errors import InvalidInput, NotFound
from gis.intake import batches, review, similar
from gis.intake.importer import import_file
from gis.numbers import optional_float

router = APIRouter(prefix="/complaints", tags=["complaints"])


def _database_url(request: Request) -> str:
    return request.app.state.engine.url.render_as_string(hide_password=False)


@router.post("/imports")
async def import_export(
    request: Request,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="A hotline export, .csv or .xlsx")],
    mapping: Annotated[str | None, Form(description="field=column,... or JSON")] = None,
    crs: Annotated[str, Form(description="Coordinate system of the file's coordinates")] = "EPSG:4326",
    source: Annotated[str, Form()] = "hotline",
) -> dict:
    """Import a file; the answer counts every row (imported + duplicates + rejected = rows read)."""
    batches.require_importer(principal)
    owner_user_id, owner_scope = batches.owner_of(principal)
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in (".csv", ".xlsx", ".txt", ".tsv", ".xlsm"):
        raise InvalidInput("upload a .csv or .xlsx file")
    with tempfile.TemporaryDirectory(prefix="gridgov-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as handle:
            while block := await file.read(1 << 20):
                handle.write(block)
        report = await run_in_threadpool(import_file, _database_url(request), path, mapping=mapping, crs=crs,
                                         source=source, file_name=file.filename, owner_user_id=owner_user_id,
                                         owner_scope=owner_scope)
    return report.as_dict()


@router.get("/imports/{batch_id}")
async def import_batch(batch_id: int, principal: CurrentPrincipal, conn: Connection) -> dict:
    """One import batch: its file, state and counts (rows read, imported, duplicates, rejected, placements); 403 for
    roles that may not import, 404 for a batch the caller does not own."""
    return await batches.get_batch(conn, principal, batch_id)


@router.get("/imports/{batch_id}/rejected.csv", response_class=Response)
async def rejected_rows(batch_id: int, request: Request, principal: CurrentPrincipal, conn: Connection) -> Response:
    """The rejected rows with their reasons, to fix and import again."""
    body, keys = await batches.rejected_rows_csv(conn, principal, batch_id)
    await log_personal_read(request, conn, principal, "intake_rejected_row", keys)
    return Response(body, media_type="text/csv; charset=utf-8")


@router.get("/review")
async def review_queue(
    request: Request, principal: CurrentPrincipal, conn: Connection,
    community: Annotated[str | None, Query(description="Only this community")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict]:
    """Complaints awaiting placement by hand, oldest first, within the caller's scope (reporters' names and phones only
    for roles that see personal data); 403 for roles that may not place complaints. The read is logged."""
    queue = await review.review_queue(conn, principal, limit, community)
    await log_personal_read(request, conn, principal, "complaint", [row["id"] for row in queue])
    return queue


class Placement(BaseModel):
    lon: float | None = None
    lat: float | None = None
    crs: str = "EPSG:4326"
    micro_grid_code: str | None = None


@router.post("/{complaint_id}/placement")
async def place(complaint_id: int, body: Placement, principal: CurrentPrincipal, conn: Connection) -> dict:
    """Place a complaint by hand (from the review queue, or to correct a placement)."""
    return json.loads(json.dumps(await review.place_by_hand(
        conn, principal, complaint_id, lon=body.lon, lat=body.lat, crs=body.crs,
        micro_grid_code=body.micro_grid_code), default=str))


@router.get("/similar", responses={
    400: {"description": "No place, a coordinate out of range or not a number, or a text over 4000 characters"},
    404: {"description": "The building or micro-grid named does not exist"}})
async def similar_reports(
    principal: CurrentPrincipal, conn: Connection,
    lon: Annotated[str | None, Query(description="WGS-84 longitude of the report")] = None,
    lat: Annotated[str | None, Query(description="WGS-84 latitude of the report")] = None,
    place: Annotated[str | None, Query(max_length=40,
                                       description="Instead of lon/lat: a building or micro-grid code")] = None,
    text: Annotated[str | None, Query(max_length=similar.MAX_TEXT, description="What the reporter has typed")] = None,
    category: Annotated[str | None, Query(max_length=16, description="The category chosen, if any")] = None,
) -> dict:
    """Likely duplicates of a report being typed (相似诉求): open or recently closed tickets near it, scored by
    distance, time, text, category and building (gis/intake/similar.py), best first, above the threshold, each as
    the caller's role may see it (the public: snapped place, compound address, score only). Only open ones can be
    joined (POST /field/reports with join_ticket_id, or Open311's join_service_request_id)."""
    x = optional_float(lon, "lon", low=-180, high=180)
    y = optional_float(lat, "lat", low=-90, high=90)
    if place and (x is not None or y is not None):
        raise InvalidInput("请只给出一种位置：lon/lat，或 place（楼栋、微网格编码）")
    if place:
        x, y = await similar.place_of(conn, place.strip())
    if (x is None) != (y is None):
        raise InvalidInput("lon 和 lat 必须同时给出")
    report = similar.NewReport(lon=x, lat=y, at=similar.now(), text=(text or "").strip() or None,
                               category_code=(category or "").strip() or None)
    return await similar.likely_duplicates(conn, principal, report)


@router.get("/{complaint_id}/placement")
async def placement(complaint_id: int, principal: CurrentPrincipal, conn: Connection) -> dict:
    """Where a complaint was placed, how (match level, score, snap distance, who placed it by hand) and who was
    responsible there at intake; staff only, 404 for the public and outside the caller's scope."""
    if not principal.is_staff:
        raise NotFound(f"no complaint {complaint_id}")
    return json.loads(json.dumps(await review.complaint_placement(conn, principal, complaint_id), default=str))


@router.get("/{complaint_id}/duplicates")
async def duplicates(complaint_id: int, principal: CurrentPrincipal, conn: Connection) -> list[dict]:
    """The possible-duplicate links of a complaint in either direction, with distance (m), hours apart and decision;
    staff only, 404 for the public and outside the caller's scope."""
    if not principal.is_staff:
        raise NotFound(f"no complaint {complaint_id}")
    return await review.duplicates_of(conn, principal, complaint_id)


class Decision(BaseModel):
    state: str


@router.post("/duplicates/{link_id}")
async def decide(link_id: int, body: Decision, principal: CurrentPrincipal, conn: Connection) -> dict:
    """Confirm or dismiss a possible duplicate (`state`: confirmed or dismissed); both complaints stay. 400 for another
    state, 403 for roles that may not place complaints, 404 for an unknown link or one outside the caller's scope."""
    return await review.decide_duplicate(conn, principal, link_id, body.state)
