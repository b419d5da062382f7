"""Supervision (督办) and escalation (吹哨报到) over HTTP: the overdue list, reminders and escalations to a ticket's
holder, the departments' answers, and the figures per unit and period (gis/tickets/supervision.py)."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict

from api.audit import log_personal_read
from api.deps import Connection, Engine
from api.params import QueryBool, QueryDate, period_bounds
from api.security import SignedIn
from gis.tickets import supervision

router = APIRouter(prefix="/supervision", tags=["supervision"])
BEIJING = timezone(timedelta(hours=8))


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@router.get("/overdue")
async def overdue_tickets(
    request: Request, principal: SignedIn, conn: Connection,
    street: str | None = None, community: str | None = None,
    grid: Annotated[list[str] | None, Query(description="Grid code(s)")] = None,
    category: Annotated[list[str] | None, Query(description="Category code(s)")] = None,
    limit: Annotated[int, Query(ge=1, le=supervision.OVERDUE_MAX_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict:
    """Open tickets past their deadline, most overdue first, with their holder and supervision so far."""
    answer = await supervision.overdue(conn, principal, street, community, _split(grid), _split(category),
                                       limit, offset)
    await log_personal_read(request, conn, principal, "ticket", [item["id"] for item in answer["items"]])
    return answer


class ReminderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = None


@router.post("/tickets/{ticket_id:int}/remind", status_code=201)
async def remind(ticket_id: int, body: ReminderIn, principal: SignedIn, engine: Engine) -> dict:
    """督办: a reminder to the ticket's holder, recorded in its history; the state does not change."""
    async with engine.begin() as conn:
        return await supervision.remind(conn, principal, ticket_id, body.note)


class EscalationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    department: str
    reason: str


@router.post("/tickets/{ticket_id:int}/escalate", status_code=201)
async def escalate(ticket_id: int, body: EscalationIn, principal: SignedIn, engine: Engine) -> dict:
    """吹哨: the ticket escalated to a department, which is to report back; the state does not change."""
    async with engine.begin() as conn:
        return await supervision.escalate(conn, principal, ticket_id, body.department, body.reason)


@router.get("/escalations")
async def list_escalations(
    principal: SignedIn, conn: Connection, ticket_id: int | None = None,
    unanswered: QueryBool = False, limit: Annotated[int, Query(ge=1, le=supervision.OVERDUE_MAX_LIMIT)] = 200,
) -> list[dict]:
    """Escalations (吹哨) in the caller's scope, newest first, optionally of one ticket or only those the department has
    not answered; staff names and texts as the privacy policy allows. 401 without a sign-in, 400 for a limit out of
    range."""
    return await supervision.escalations(conn, principal, ticket_id, unanswered, limit)


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answer: str


@router.post("/escalations/{escalation_id:int}/answer")
async def answer_escalation(escalation_id: int, body: AnswerIn, principal: SignedIn, engine: Engine) -> dict:
    """报到: the department's answer to an escalation, recorded once."""
    async with engine.begin() as conn:
        return await supervision.answer_escalation(conn, principal, escalation_id, body.answer)


@router.get("/stats")
async def supervision_stats(
    principal: SignedIn, conn: Connection,
    level: Annotated[str, Query(description="grid, community, street, property_company or department")] = "street",
    period_from: Annotated[QueryDate | None, Query(alias="from")] = None,
    period_to: Annotated[QueryDate | None, Query(alias="to", description="exclusive")] = None,
) -> dict:
    """Tickets supervised per unit in a period (Beijing dates, end exclusive) and how soon they moved after it."""
    start, end = period_bounds(period_from, period_to)
    rows = await supervision.stats(conn, principal, level, start, end)
    return {"level": level, "from": start, "to": end, "moved_within_hours": supervision.MOVED_WITHIN_HOURS,
            "rows": rows}
