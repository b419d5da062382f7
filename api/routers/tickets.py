"""Tickets over HTTP: list and filter, one ticket with its history, transitions, photos, comments, ratings,
bulk assignment by area, rates, routing rules, deadline classes and the working calendar.

Every read and write is limited to the caller's scope: a ticket outside it answers 404, as if it did not exist.
"""

from __future__ import annotations

from contextlib import aclosing
from datetime import datetime, time
from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from api.audit import log_personal_read
from api.deps import Connection, Engine
from api.params import QueryBool, QueryDate, QueryDateTime, period_bounds
from api.security import Admin, CurrentPrincipal, SignedIn
from gis.serve.bbox import parse_bbox
from gis.tickets import assignment, callbacks, deadlines, queries, rates, repeats, routing, workflow
from gis.tickets.filters import TicketFilter, parse_polygon

router = APIRouter(prefix="/tickets", tags=["tickets"])


def _split(values: list[str] | None) -> list[str]:
    """Repeated parameters or comma lists, both accepted."""
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


class TicketQuery(BaseModel):
    """The query parameters that select tickets, shared by list, GeoJSON, CSV and tiles."""

    state: list[str] | None = Field(None, description="State(s), or 'open'")
    category: list[str] | None = Field(None, description="Category code(s)")
    street: str | None = None
    community: str | None = None
    grid: list[str] | None = Field(None, description="Grid code(s)")
    compound: str | None = None
    bbox: str | None = Field(None, description="minlon,minlat,maxlon,maxlat")
    polygon: str | None = Field(None, description="GeoJSON Polygon/MultiPolygon (WGS-84)")
    overdue: QueryBool | None = None
    min_age_hours: float | None = Field(None, ge=0)
    max_age_hours: float | None = Field(None, ge=0)
    reported_from: QueryDateTime | None = None
    reported_to: QueryDateTime | None = None
    mine: QueryBool = Field(False, description="Only tickets assigned to me or my unit")

    def selection(self) -> TicketFilter:
        """The ticket filter these parameters describe (lists split, the box and the drawn area checked)."""
        return TicketFilter(
            states=_split(self.state), categories=_split(self.category), street=self.street,
            community=self.community, grids=_split(self.grid), compound=self.compound, bbox=parse_bbox(self.bbox),
            polygon=parse_polygon(self.polygon), overdue=self.overdue, min_age_hours=self.min_age_hours,
            max_age_hours=self.max_age_hours, reported_from=self.reported_from, reported_to=self.reported_to,
            mine=self.mine,
        )


Filters = Annotated[TicketQuery, Query()]


@router.get("", response_class=Response, responses={200: {"content": {"application/json": {}}}})
async def list_tickets(
    request: Request, principal: CurrentPrincipal, conn: Connection, filters: Filters,
    sort: str = "due", limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """A page of tickets in the caller's scope and view, as {items, next_offset}, filtered by the query and sorted by
    `sort` (due, reported, -reported or id); 400 for an unknown sort or a bad filter, bbox or polygon. The read is
    logged."""
    page = await queries.list_tickets(conn, principal, filters.selection(), sort, limit, offset)
    await log_personal_read(request, conn, principal, "ticket", page.ids)
    return Response(page.body, media_type="application/json")


@router.get(".geojson", response_class=Response, responses={200: {"content": {"application/geo+json": {}}}})
async def tickets_geojson(
    request: Request, principal: CurrentPrincipal, conn: Connection, filters: Filters,
    sort: str = "due", limit: Annotated[int, Query(ge=1, le=queries.MAX_LIMIT)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The same selection as GET /tickets as a GeoJSON FeatureCollection of ticket points (places coarsened as the
    caller's view requires); 400 for an unknown sort or a bad filter. The read is logged."""
    page = await queries.tickets_geojson(conn, principal, filters.selection(), sort, limit, offset)
    await log_personal_read(request, conn, principal, "ticket", page.ids)
    return Response(page.body, media_type="application/geo+json")


@router.get(".csv", response_class=StreamingResponse, responses={200: {"content": {"text/csv": {}}}})
async def tickets_csv(request: Request, principal: SignedIn, conn: Connection, engine: Engine,
                      filters: Filters) -> StreamingResponse:
    """Streamed from the database in chunks; the read is logged before the first row is sent."""
    export = await queries.tickets_csv(conn, principal, filters.selection())  # the selection is fixed
    try:
        # Through the engine: `conn` holds the export's snapshot until the last chunk.
        await log_personal_read(request, engine, principal, "ticket", export.ids)
    except BaseException:
        await export.aclose()
        raise

    async def body():
        async with aclosing(export):
            async for chunk in export.chunks:
                yield chunk

    return StreamingResponse(body(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="tickets.csv"'})


@router.get("/tiles/{z}/{x}/{y}.mvt", response_class=Response,
            responses={200: {"content": {"application/vnd.mapbox-vector-tile": {}}}})
async def tickets_tile(z: int, x: int, y: int, principal: CurrentPrincipal, conn: Connection,
                       filters: Filters) -> Response:
    """A Mapbox vector tile (layer `tickets`) of the ticket points the filter selects, in the caller's scope and view;
    400 for z/x/y out of range or a bad filter."""
    body = await queries.tickets_tile(conn, principal, z, x, y, filters.selection())
    return Response(body, media_type="application/vnd.mapbox-vector-tile")


@router.get("/workflow")
async def workflow_spec() -> list[dict]:
    """The state machine: actions, from which states, to which state, and which roles may take them."""
    return workflow.state_machine()


class Assignee(BaseModel):
    kind: str
    code: str | None = None
    department: str | None = None


class BulkAssignee(Assignee):
    model_config = ConfigDict(extra="forbid")
    user: str | None = Field(None, description="a person of the organisation (user id or username)")


class AssignBody(BaseModel):
    # An unknown field is refused, not dropped: a filter the server does not know must not widen the selection.
    model_config = ConfigDict(extra="forbid")
    assignee: BulkAssignee
    ticket_ids: list[int] = Field(default_factory=list)
    versions: dict[int, int] | None = Field(None, description="ticket id → version the dispatcher saw")
    street: str | None = None
    community: str | None = None
    grids: list[str] = Field(default_factory=list)
    compound: str | None = None
    polygon: dict | None = None
    states: list[str] = Field(default_factory=list)
    categories: list[str] = Field(default_factory=list)
    overdue: StrictBool | None = None
    min_age_hours: float | None = Field(None, ge=0)
    max_age_hours: float | None = Field(None, ge=0)
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    note: str | None = None
    idempotency_key: str | None = Field(None, description="or the Idempotency-Key header")
    dry_run: StrictBool = Field(False, description="answer what would be assigned, change nothing")


@router.post("/assign", responses={404: {"description": "A selected ticket does not exist or is out of scope"}})
async def assign(body: AssignBody, principal: SignedIn, engine: Engine,
                 idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None) -> dict:
    """Assign or reassign in bulk, all or none; 409 when another dispatcher changed a ticket first. With an
    idempotency key a repeated submit changes nothing and answers as the first did."""
    selection = TicketFilter(
        ids=body.ticket_ids, street=body.street, community=body.community, grids=body.grids,
        compound=body.compound, polygon=parse_polygon(body.polygon), states=body.states,
        categories=body.categories, overdue=body.overdue, min_age_hours=body.min_age_hours,
        max_age_hours=body.max_age_hours, reported_from=body.reported_from, reported_to=body.reported_to,
    )
    async with engine.begin() as conn:
        return await assignment.assign(conn, principal, body.assignee.model_dump(exclude_none=False), selection,
                                       body.versions, body.note, idempotency_key or body.idempotency_key,
                                       body.dry_run)


@router.get("/assignees")
async def assignee_people(principal: SignedIn, conn: Connection, kind: str, code: str) -> list[dict]:
    """The people of an organisation a dispatcher may name in a bulk assignment (empty when it has none)."""
    return await assignment.people(conn, principal, kind, code)


@router.get("/rates")
async def ticket_rates(
    principal: SignedIn, conn: Connection,
    level: Annotated[str, Query(description="grid, community, street, property_company or department")] = "street",
    period_from: Annotated[QueryDate | None, Query(alias="from")] = None,
    period_to: Annotated[QueryDate | None, Query(alias="to", description="exclusive")] = None,
    unit: str | None = None,
    by: Annotated[str, Query(description="unit, or month for the monthly trend")] = "unit",
    min_sample: Annotated[int | None, Query(ge=0, le=100_000, description="least sample to be ranked")] = None,
    sort: Annotated[str | None, Query(description="response, handled, resolution, on_time or satisfaction")] = None,
) -> dict:
    """响应率, 办结率, 解决率, 按时办结率, 满意率 per unit of a level over a period (local dates, end exclusive), ranked
    among the units with at least `min_sample` tickets behind each rate (gis/tickets/rates.py)."""
    start, end = period_bounds(period_from, period_to)
    sample = rates.rates_settings().min_sample if min_sample is None else min_sample
    rows = await rates.rates(conn, principal, level, start, end, unit, by, sample, sort)
    return {"level": level, "by": by, "from": start, "to": end, "min_sample": sample,
            "repeat_window_days": repeats.window_days(), "rows": rows}


@router.get("/rates/tickets")
async def ticket_rate_tickets(
    request: Request, principal: SignedIn, conn: Connection,
    rate: Annotated[str, Query(description="response, handled, resolution, on_time or satisfaction")],
    unit: Annotated[str, Query(description="the unit's code (a company's id, a department's name)")],
    level: str = "street",
    period_from: Annotated[QueryDate | None, Query(alias="from")] = None,
    period_to: Annotated[QueryDate | None, Query(alias="to", description="exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=rates.DRILL_MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """The tickets behind one figure of /tickets/rates: its denominator's tickets, each flagged `in_numerator`."""
    start, end = period_bounds(period_from, period_to)
    answer = await rates.rate_tickets(conn, principal, rate, level, unit, start, end, limit, offset)
    await log_personal_read(request, conn, principal, "ticket", [item["id"] for item in answer["items"]])
    return answer


@router.get("/rules")
async def list_rules(principal: SignedIn, conn: Connection) -> list[dict]:
    """The routing rules (派遣规则), lowest priority number first (it wins), inactive ones included; 401 without a
    sign-in."""
    return await routing.list_rules(conn)


class RuleIn(BaseModel):
    priority: int
    name: str
    category_code: str | None = None
    responsible_kind: str | None = None
    place: str = "any"
    assignee_kind: str
    department: str | None = None
    auto_dispatch: StrictBool = True
    active: StrictBool = True


@router.post("/rules", status_code=201)
async def create_rule(body: RuleIn, principal: Admin, engine: Engine) -> dict:
    """Add a routing rule; admins only. 400 for a bad priority, place, assignee kind or responsible kind, a missing name
    or department, or an unknown category."""
    async with engine.begin() as conn:
        return await routing.create_rule(conn, body.model_dump())


@router.put("/rules/{rule_id}")
async def update_rule(rule_id: int, body: RuleIn, principal: Admin, engine: Engine) -> dict:
    """Replace a routing rule; admins only. 404 for an unknown rule, 400 as for a new rule."""
    async with engine.begin() as conn:
        return await routing.update_rule(conn, rule_id, body.model_dump())


@router.delete("/rules/{rule_id}", status_code=204)
async def deactivate_rule(rule_id: int, principal: Admin, engine: Engine) -> Response:
    """Switch a routing rule off (it is kept, so tickets still name the rule that routed them); admins only, 404 for an
    unknown rule."""
    async with engine.begin() as conn:
        await routing.deactivate_rule(conn, rule_id)
    return Response(status_code=204)


@router.get("/deadlines")
async def list_deadlines(conn: Connection) -> list[dict]:
    """The deadline classes (处置时限): amount, unit (hours or days), basis (working or calendar time) and response
    hours, shortest first."""
    return await deadlines.list_policies(conn)


class PolicyIn(BaseModel):
    amount: int
    unit: str
    basis: str
    response_hours: int


@router.put("/deadlines/{deadline_class}")
async def set_deadline(deadline_class: str, body: PolicyIn, principal: Admin, engine: Engine) -> dict:
    """Change a deadline class; tickets already open keep the deadline they were given. Admins only; 404 for an unknown
    class, 400 for a non-positive amount or response hours, or an unknown unit or basis."""
    async with engine.begin() as conn:
        return await deadlines.set_policy(conn, deadline_class, body.amount, body.unit, body.basis,
                                          body.response_hours)


@router.get("/calendar")
async def get_calendar(conn: Connection, start: QueryDate, end: QueryDate) -> list[dict]:
    """The working calendar's days from `start` to `end`, both included (working day or not, start time, working
    minutes, note); 400 for more than 800 days."""
    return await deadlines.calendar(conn, start, end)


class DayIn(BaseModel):
    is_workday: StrictBool
    note: str | None = None
    start_time: time = time(9, 0)
    minutes: int = deadlines.WORKDAY_MINUTES


@router.put("/calendar/{day}")
async def set_calendar_day(day: QueryDate, body: DayIn, principal: Admin, engine: Engine) -> dict:
    """Mark one day as a working day or a day off (public holidays, make-up working days 调休) with its start time and
    working minutes. Admins only; 404 for a day outside the calendar, 400 for minutes outside 1 to 1440."""
    async with engine.begin() as conn:
        return await deadlines.set_day(conn, day, body.is_workday, body.note, body.start_time, body.minutes)


@router.get("/{ticket_id:int}")
async def get_ticket(ticket_id: int, request: Request, principal: CurrentPrincipal, conn: Connection) -> dict:
    """One ticket with its history (append-only events) and its photos' metadata, in the caller's view; 404 for an
    unknown ticket or one outside the caller's scope. The read is logged."""
    ticket = await queries.get_ticket(conn, principal, ticket_id)
    await log_personal_read(request, conn, principal, "ticket", [ticket_id])
    return ticket


class TransitionIn(BaseModel):
    action: str
    note: str | None = None
    version: int | None = None
    merge_into: int | None = None
    assignee: Assignee | None = None


@router.post("/{ticket_id:int}/transitions")
async def transition(ticket_id: int, body: TransitionIn, principal: SignedIn, engine: Engine) -> dict:
    """Apply one action of the state machine (GET /tickets/workflow) to a ticket; answers its new state and version. 400
    for an unknown action, a missing note, assignee or merge target; 403 for a role that may not take the action; 404
    outside the scope; 409 when `version` is stale or the state does not allow the action."""
    async with engine.begin() as conn:
        return await workflow.transition(conn, principal, ticket_id, body.action, body.note, body.version,
                                         body.merge_into, body.assignee.model_dump() if body.assignee else None)


class CommentIn(BaseModel):
    note: str


@router.post("/{ticket_id:int}/comments", status_code=201)
async def comment(ticket_id: int, body: CommentIn, principal: SignedIn, engine: Engine) -> dict:
    """Add a comment to a ticket's history (the state does not change); answers the event id. 400 for an empty comment
    or one over 4000 characters, 403 for a role that may not comment, 404 outside the scope."""
    async with engine.begin() as conn:
        return {"event_id": await workflow.comment(conn, principal, ticket_id, body.note)}


@router.post("/{ticket_id:int}/photos", status_code=201)
async def add_photo(ticket_id: int, principal: SignedIn, engine: Engine,
                    file: Annotated[UploadFile, File()], note: Annotated[str | None, Form()] = None) -> dict:
    """Attach a photo (JPEG, PNG or WebP, judged by its bytes, at most 10 MB) to a ticket with an optional note. 400 for
    an empty, too large or other file, 403 for a role that may not add photos, 404 outside the scope."""
    content = await file.read(workflow.MAX_PHOTO_BYTES + 1)
    async with engine.begin() as conn:
        return await workflow.add_photo(conn, principal, ticket_id, file.filename or "photo", content, note)


@router.get("/{ticket_id:int}/photos/{photo_id:int}", response_class=Response)
async def get_photo(ticket_id: int, photo_id: int, principal: SignedIn, conn: Connection) -> Response:
    """A ticket photo's bytes with its image type; 404 for an unknown photo, one of another ticket, outside the scope,
    or for a view that shows no photos."""
    kind, content = await queries.get_photo(conn, principal, ticket_id, photo_id)
    return Response(content, media_type=kind)


class RatingIn(BaseModel):
    score: int
    comment: str | None = None
    reporter_phone: str | None = None


@router.post("/{ticket_id:int}/rating")
async def rate(ticket_id: int, body: RatingIn, principal: CurrentPrincipal, engine: Engine) -> dict:
    """Rate a closed ticket 1 to 5 (考核评价): by the reporter, who proves it with the complaint's phone number, or
    recorded by staff from a call-back. 400 for a score out of range or a missing phone, 403 for a role that may not
    record ratings, 404 when the ticket or phone does not match, 409 when the ticket is not closed or already rated."""
    async with engine.begin() as conn:
        return await workflow.rate(conn, principal, ticket_id, body.score, body.comment, body.reporter_phone)


class CallbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    solved: StrictBool = Field(description="the resident says the problem is solved")
    satisfied: StrictBool | None = Field(None, description="the resident is satisfied; empty when not asked")
    note: str | None = None
    version: int | None = None
    reopen: StrictBool = Field(False, description="reopen the ticket as well (only when not solved)")


@router.post("/{ticket_id:int}/callbacks", status_code=201)
async def callback(ticket_id: int, body: CallbackIn, principal: SignedIn, engine: Engine) -> dict:
    """Record a callback (回访) on a closed ticket: solved or not and, when asked, satisfied or not; with `reopen` a
    not-solved callback reopens the ticket too. 400 for a missing or bad answer, 403 for a role that may not call
    back (or reopen), 404 outside the scope, 409 for a stale version, a ticket not closed or a closing called back
    already."""
    async with engine.begin() as conn:
        return await callbacks.record_callback(conn, principal, ticket_id, body.solved, body.satisfied, body.note,
                                               body.version, body.reopen)
