"""The registry over HTTP: kinds and templates, imports with their row-by-row account, exports in the template,
a compound's takeover (接管) and the owners' committees whose term is ending. Role scope and the account live in
gis.registry; this module only speaks HTTP."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.audit import log_personal_read
from api.deps import Connection
from api.security import SignedIn
from gis.access.auth import Principal
from gis.errors import InvalidInput
from gis.registry import export, history
from gis.registry.files import SUFFIXES
from gis.registry.kinds import get_kind
from gis.registry.load import import_file
from gis.registry.scope import require_registry_role

router = APIRouter(prefix="/registry", tags=["registry"])


def _import(database_url: str, principal: Principal, kind: str, path: Path, mapping: str | None,
            file_name: str | None) -> dict:
    from gis.db.engine import sync_engine

    engine = sync_engine(database_url)
    try:
        with engine.begin() as conn:
            return import_file(conn, principal, kind, path, mapping=mapping, file_name=file_name).as_dict()
    finally:
        engine.dispose()


def _file_response(body: bytes, fmt: str, name: str) -> Response:
    return Response(body, media_type=export.MEDIA_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})


@router.get("/kinds")
async def kinds(principal: SignedIn) -> list[dict]:
    """Every kind: its Chinese title, natural key, columns (required or not, choices) and who may maintain it."""
    require_registry_role(principal)
    return export.kinds_listing()


@router.get("/committees/expiring")
async def expiring_committees(
    principal: SignedIn, conn: Connection, request: Request,
    within_days: Annotated[int, Query(ge=0, le=3650, description="Terms ending within this many days")] = 90,
) -> list[dict]:
    """Owners' committees of the caller's communities whose term has ended or ends within `within_days`."""
    rows = await conn.run_sync(lambda sync: history.expiring_committees(sync, principal, within_days=within_days))
    return rows


class Takeover(BaseModel):
    """A takeover (接管): which company, from which day, and why."""

    company_credit_code: str = Field(min_length=1, max_length=40)
    on_date: date
    reason: str = Field(min_length=1, max_length=500)


@router.post("/compounds/{compound_code}/takeover")
async def take_over(compound_code: str, body: Takeover, principal: SignedIn, conn: Connection) -> dict:
    """The company takes the compound over from `on_date`: the old management version closes, the new one opens
    (out of scope or unknown compound: 404)."""
    require_registry_role(principal)
    from gis.registry.values import parse_credit_code

    credit = parse_credit_code(body.company_credit_code)
    result = await conn.run_sync(
        lambda sync: history.take_over(sync, principal, compound_code, credit, body.on_date, body.reason))
    await conn.commit()
    return result


async def _template(kind: str, fmt: str, principal: Principal) -> Response:
    require_registry_role(principal)
    return _file_response(export.template(get_kind(kind).name, fmt), fmt, f"{kind}_template")


@router.get("/{kind}/template.csv", response_class=Response)
async def template_csv(kind: str, principal: SignedIn) -> Response:
    """The empty CSV template of a kind (UTF-8 with BOM, Chinese headers)."""
    return await _template(kind, "csv", principal)


@router.get("/{kind}/template.xlsx", response_class=Response)
async def template_xlsx(kind: str, principal: SignedIn) -> Response:
    """The empty XLSX template of a kind."""
    return await _template(kind, "xlsx", principal)


@router.post("/{kind}/imports")
async def import_registry(
    kind: str,
    request: Request,
    principal: SignedIn,
    file: Annotated[UploadFile, File(description="A .csv (UTF-8 or GBK) or .xlsx file in the kind's template")],
    mapping: Annotated[str | None, Form(description='Column mapping as JSON {"their header": "our header"}')] = None,
) -> dict:
    """Import a file of one kind in one transaction: every row imported, updated, unchanged or rejected (with
    the reason); the counts add up to the rows read."""
    require_registry_role(principal)
    get_kind(kind)
    suffix = Path(file.filename or "upload.csv").suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInput("只能导入 .csv 或 .xlsx 文件")
    database_url = request.app.state.engine.url.render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory(prefix="gridgov-registry-") as folder:
        path = Path(folder) / f"upload{suffix}"
        with path.open("wb") as handle:
            while block := await file.read(1 << 20):
                handle.write(block)
        return await run_in_threadpool(_import, database_url, principal, kind, path, mapping, file.filename)


async def _export(kind: str, fmt: str, request: Request, principal: Principal, conn) -> Response:
    body, count = await conn.run_sync(lambda sync: export.export_file(sync, principal, kind, fmt))
    await log_personal_read(request, conn, principal, f"registry_{kind}", record_count=count)
    return _file_response(body, fmt, kind)


@router.get("/{kind}/export.csv", response_class=Response)
async def export_csv(kind: str, request: Request, principal: SignedIn, conn: Connection) -> Response:
    """The kind's records in the caller's scope, in its CSV template (importing it again changes nothing)."""
    return await _export(kind, "csv", request, principal, conn)


@router.get("/{kind}/export.xlsx", response_class=Response)
async def export_xlsx(kind: str, request: Request, principal: SignedIn, conn: Connection) -> Response:
    """The kind's records in the caller's scope, in its XLSX template."""
    return await _export(kind, "xlsx", request, principal, conn)
