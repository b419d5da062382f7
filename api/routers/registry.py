"""The registry over HTTP: kinds and templates, imports with their row-by-row account, exports in the template,
a compound's takeover (接管) and the owners' committees whose term is ending. Role scope and the account live in
gis.registry; this module only speaks HTTP."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from api.audit import log_personal_read
from api.deps import Connection
from api.security import SignedIn
from gis.access.auth import Principal
from gis.errors import InvalidInput
from gis.registry import edits, export, history
from gis.registry.files import SUFFIXES
from gis.registry.kinds import get_kind
from gis.registry.load import import_file
from gis.registry.scope import require_registry_role

router = APIRouter(prefix="/registry", tags=["registry"])
MAX_ID = 2**63 - 1
RowId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


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


class Reasoned(BaseModel):
    """The date an edit takes effect and why."""

    on_date: date
    reason: str = Field(min_length=1, max_length=500)


class ModeChange(Reasoned):
    """A change of management mode without a new company (Chinese label or stored value)."""

    management_mode: str = Field(min_length=1, max_length=20)


class NewTerm(BaseModel):
    """换届: an owners' committee's new term."""

    term_start: date
    term_end: date | None = None
    member_count: int = Field(ge=0, le=100000)
    party_member_count: int = Field(ge=0, le=100000)
    chair_name: str = Field(min_length=1, max_length=100)
    chair_is_party_member: bool
    members: str | None = Field(default=None, max_length=2000)
    reason: str = Field(min_length=1, max_length=500)


class NewWorker(BaseModel):
    """A grid worker not yet registered."""

    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=1, max_length=40)
    is_party_member: bool
    is_part_time: bool = False
    company_credit_code: str | None = Field(default=None, max_length=40)


class Joining(Reasoned):
    """A grid worker joins a grid: one already registered (`worker_id`) or a new one (`worker`)."""

    grid_code: str = Field(min_length=1, max_length=40)
    worker_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    worker: NewWorker | None = None


class Secretary(BaseModel):
    """A party organisation's new secretary."""

    secretary_name: str = Field(min_length=1, max_length=100)
    secretary_phone: str | None = Field(default=None, max_length=40)
    reason: str = Field(min_length=1, max_length=500)


class CompanyInfo(BaseModel):
    """What a property company proposes about itself (fields left out stay as they are)."""

    contact_name: str | None = Field(default=None, max_length=100)
    contact_phone: str | None = Field(default=None, max_length=40)
    has_party_org: bool | None = None
    party_work_only: bool | None = None


class Decision(BaseModel):
    """A review's reason (required to reject)."""

    reason: str | None = Field(default=None, max_length=500)


async def _edit(conn, action) -> dict:
    result = await conn.run_sync(action)
    await conn.commit()
    return result


@router.get("/compounds/{compound_code}/parties")
async def compound_parties(compound_code: str, principal: SignedIn, conn: Connection, request: Request) -> dict:
    """What the compound's edit forms start from: management, committee terms, grid workers, party organisations."""
    result = await conn.run_sync(lambda sync: edits.compound_parties(sync, principal, compound_code))
    await log_personal_read(request, conn, principal, "registry_compound_parties", record_ids=[compound_code])
    return result


@router.post("/compounds/{compound_code}/management")
async def change_mode(compound_code: str, body: ModeChange, principal: SignedIn, conn: Connection) -> dict:
    """A change of the compound's management mode without a new company, dated and audited."""
    return await _edit(conn, lambda sync: edits.change_mode(sync, principal, compound_code, body.management_mode,
                                                            body.on_date, body.reason))


@router.post("/compounds/{compound_code}/committee-terms")
async def new_term(compound_code: str, body: NewTerm, principal: SignedIn, conn: Connection) -> dict:
    """换届: the owners' committee's new term (overlapping a stored term: 400 with the reason)."""
    values = body.model_dump(exclude={"reason"})
    return await _edit(conn, lambda sync: edits.new_term(sync, principal, compound_code, values, body.reason))


@router.post("/grid-workers/joins")
async def join_grid(body: Joining, principal: SignedIn, conn: Connection) -> dict:
    """A grid worker joins a grid from a date (a dated assignment)."""
    if (body.worker_id is None) == (body.worker is None):
        raise InvalidInput("请选择已登记的网格员，或填写新网格员的信息（二者选一）")
    person = body.worker.model_dump() if body.worker else None
    return await _edit(conn, lambda sync: edits.join_grid(sync, principal, body.grid_code, body.on_date,
                                                          body.reason, worker_id=body.worker_id, person=person))


@router.post("/grid-workers/{worker_id}/leave")
async def leave_grid(worker_id: RowId, body: Reasoned, principal: SignedIn, conn: Connection) -> dict:
    """A grid worker leaves the grid from a date (the open assignment ends)."""
    return await _edit(conn, lambda sync: edits.leave_grid(sync, principal, worker_id, body.on_date, body.reason))


@router.post("/party-organisations/{organisation_code}/secretary")
async def change_secretary(organisation_code: str, body: Secretary, principal: SignedIn, conn: Connection) -> dict:
    """A party organisation's new secretary, audited."""
    return await _edit(conn, lambda sync: edits.change_secretary(sync, principal, organisation_code,
                                                                 body.secretary_name, body.secretary_phone,
                                                                 body.reason))


@router.post("/party-organisations/{organisation_code}/dissolve")
async def dissolve(organisation_code: str, body: Reasoned, principal: SignedIn, conn: Connection) -> dict:
    """撤销: the party organisation's period ends at the date."""
    return await _edit(conn, lambda sync: edits.dissolve(sync, principal, organisation_code, body.on_date,
                                                         body.reason))


@router.get("/company")
async def own_company(principal: SignedIn, conn: Connection) -> dict:
    """A property company's own basic information and its newest proposal."""
    return await conn.run_sync(lambda sync: edits.own_company(sync, principal))


@router.post("/company/proposals")
async def propose(body: CompanyInfo, principal: SignedIn, conn: Connection) -> dict:
    """A property company proposes its own basic information: pending until a street or the administrator
    approves it."""
    values = body.model_dump(exclude_none=True)
    return await _edit(conn, lambda sync: edits.propose_company_info(sync, principal, values))


@router.get("/proposals")
async def proposals(
    principal: SignedIn, conn: Connection,
    state: Annotated[str | None, Query(description="pending, approved or rejected (default pending)")] = "pending",
) -> list[dict]:
    """Companies' proposals, newest first: a company its own, a street those of the companies serving it."""
    return await conn.run_sync(lambda sync: edits.proposals(sync, principal, state))


@router.post("/proposals/{proposal_id}/approve")
async def approve(proposal_id: RowId, body: Decision, principal: SignedIn, conn: Connection) -> dict:
    """Approve a pending proposal: the company's record changes, audited."""
    return await _edit(conn, lambda sync: edits.decide(sync, principal, proposal_id, True, body.reason))


@router.post("/proposals/{proposal_id}/reject")
async def reject(proposal_id: RowId, body: Decision, principal: SignedIn, conn: Connection) -> dict:
    """Reject a pending proposal with its reason; the company is unchanged."""
    return await _edit(conn, lambda sync: edits.decide(sync, principal, proposal_id, False, body.reason))


@router.get("/changes")
async def changes(
    principal: SignedIn, conn: Connection, request: Request,
    limit: Annotated[int, Query(ge=1, le=edits.MAX_CHANGES)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="The smallest id of the previous page")] = None,
) -> list[dict]:
    """The change log newest first: the administrator all, a street or community its scope."""
    rows = await conn.run_sync(lambda sync: edits.changes(sync, principal, limit, before_id))
    await log_personal_read(request, conn, principal, "registry_changes", record_ids=[row["id"] for row in rows])
    return rows


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
