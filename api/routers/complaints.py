"""Complaint intake over HTTP: batch import of hotline exports, the review queue and placement by hand,
possible duplicates, and the placement and responsible parties of one complaint."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy import text

from api.audit import log_personal_read
from api.deps import Connection
from api.security import CurrentPrincipal
from gis.errors import Forbidden, InvalidInput, NotFound
from gis.intake import review
from gis.intake.importer import SETTLE_ABANDONED_SQL, import_file

router = APIRouter(prefix="/complaints", tags=["complaints"])
IMPORT_ROLES = ("admin", "street")


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
    if principal.role not in IMPORT_ROLES:
        raise Forbidden("imports are for admin and street office users")
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in (".csv", ".xlsx", ".txt", ".tsv", ".xlsm"):
        raise InvalidInput("upload a .csv or .xlsx file")
    with tempfile.TemporaryDirectory(prefix="gridgov-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as handle:
            while block := await file.read(1 << 20):
                handle.write(block)
        report = await run_in_threadpool(import_file, _database_url(request), path, mapping=mapping, crs=crs,
                                         source=source, file_name=file.filename)
    return report.as_dict()


@router.get("/imports/{batch_id}")
async def import_batch(batch_id: int, principal: CurrentPrincipal, conn: Connection) -> dict:
    if principal.role not in IMPORT_ROLES:
        raise Forbidden("imports are for admin and street office users")
    await conn.execute(text(SETTLE_ABANDONED_SQL))
    await conn.commit()
    row = (await conn.execute(text(
        "SELECT id, source, file_name, crs, state, rows_read, imported, duplicates, rejected, placements, "
        "started_at, finished_at FROM intake_batch WHERE id = :id"), {"id": batch_id})).mappings().first()
    if row is None:
        raise NotFound(f"no import {batch_id}")
    return dict(row)


@router.get("/imports/{batch_id}/rejected.csv", response_class=Response)
async def rejected_rows(batch_id: int, request: Request, principal: CurrentPrincipal, conn: Connection) -> Response:
    """The rejected rows with their reasons, to fix and import again."""
    if principal.role not in IMPORT_ROLES:
        raise Forbidden("imports are for admin and street office users")
    batch = (await conn.execute(text("SELECT mapping FROM intake_batch WHERE id = :id"), {"id": batch_id})).first()
    if batch is None:
        raise NotFound(f"no import {batch_id}")
    rows = (await conn.execute(text(
        "SELECT row_number, reason, raw FROM intake_rejected_row WHERE batch_id = :id ORDER BY row_number"),
        {"id": batch_id})).all()
    mapping = batch[0] or {}
    columns = list(dict.fromkeys([*mapping.values(), *(k for _, _, raw in rows for k in raw)]))
    # Raw values are keyed by canonical field; show them under the file's own column names.
    field_of = {column: field for field, column in mapping.items()}
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*columns, "rejected_row", "rejected_reason"])
    for row_number, reason, raw in rows:
        writer.writerow([raw.get(field_of.get(c, c), raw.get(c)) for c in columns] + [row_number, reason])
    # Rejected rows are the file's own cells, reporters' names and phones included.
    await log_personal_read(request, conn, principal, "intake_rejected_row",
                            [f"{batch_id}:{row_number}" for row_number, _, _ in rows])
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8")


@router.get("/review")
async def review_queue(
    request: Request, principal: CurrentPrincipal, conn: Connection,
    community: Annotated[str | None, Query(description="Only this community")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 200,
) -> list[dict]:
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


@router.get("/{complaint_id}/placement")
async def placement(complaint_id: int, principal: CurrentPrincipal, conn: Connection) -> dict:
    if not principal.is_staff:
        raise NotFound(f"no complaint {complaint_id}")
    return json.loads(json.dumps(await review.complaint_placement(conn, principal, complaint_id), default=str))


@router.get("/{complaint_id}/duplicates")
async def duplicates(complaint_id: int, principal: CurrentPrincipal, conn: Connection) -> list[dict]:
    if not principal.is_staff:
        raise NotFound(f"no complaint {complaint_id}")
    return await review.duplicates_of(conn, principal, complaint_id)


class Decision(BaseModel):
    state: str


@router.post("/duplicates/{link_id}")
async def decide(link_id: int, body: Decision, principal: CurrentPrincipal, conn: Connection) -> dict:
    return await review.decide_duplicate(conn, principal, link_id, body.state)
