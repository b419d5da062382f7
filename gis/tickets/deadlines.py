"""Deadline classes (处置时限) and the working calendar (工作日历) they may be counted on.

A class's time runs in calendar time or in working time (09:00–17:00 on working days by default; public
holidays and make-up working days 调休 are set per day). The arithmetic lives in SQL (`ticket_due_at`, and
inline in the intake trigger) so bulk intake stays one statement."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from gis.errors import InvalidInput, NotFound
from gis.layers.models import DEADLINE_CLASSES

WORKDAY_MINUTES = 480


async def list_policies(conn: AsyncConnection) -> list[dict]:
    """Every deadline class with its amount, unit, basis and response hours, shortest first."""
    rows = await conn.execute(text("SELECT * FROM deadline_policy ORDER BY amount * CASE unit WHEN 'days' THEN 24 "
                                   "ELSE 1 END"))
    return [dict(row) for row in rows.mappings()]


async def set_policy(conn: AsyncConnection, deadline_class: str, amount: int, unit: str, basis: str,
                     response_hours: int) -> dict:
    """Change a class; tickets already open keep the deadline they were given."""
    if deadline_class not in DEADLINE_CLASSES:
        raise NotFound(f"no deadline class {deadline_class!r}")
    if amount <= 0 or response_hours <= 0:
        raise InvalidInput("amount and response_hours must be positive")
    if unit not in ("hours", "days") or basis not in ("working", "calendar"):
        raise InvalidInput("unit is hours or days; basis is working or calendar")
    await conn.execute(text("""UPDATE deadline_policy SET amount = :amount, unit = :unit, basis = :basis,
                               response_hours = :response WHERE deadline_class = :c"""),
                       {"amount": amount, "unit": unit, "basis": basis, "response": response_hours,
                        "c": deadline_class})
    return {"deadline_class": deadline_class, "amount": amount, "unit": unit, "basis": basis,
            "response_hours": response_hours}


async def due_at(conn: AsyncConnection, start: datetime, deadline_class: str) -> datetime:
    """When a ticket of `deadline_class` started at `start` is due, counted in SQL (`ticket_due_at`) in calendar or
    working time; NotFound for an unknown class."""
    if deadline_class not in DEADLINE_CLASSES:
        raise NotFound(f"no deadline class {deadline_class!r}")
    return (await conn.execute(text("SELECT ticket_due_at(:s, :c)"), {"s": start, "c": deadline_class})).scalar_one()


async def set_day(conn: AsyncConnection, day: date, is_workday: bool, note: str | None = None,
                  start_time: time = time(9, 0), minutes: int = WORKDAY_MINUTES) -> dict:
    """Mark a day as a working day or a day off, then recount the running working minutes after it."""
    if not 0 < minutes <= 24 * 60:
        raise InvalidInput("a working day has 1 to 1440 working minutes")
    done = (await conn.execute(text("""
        UPDATE work_calendar SET is_workday = :w, note = :note, start_time = :start,
               minutes = CASE WHEN :w THEN :minutes ELSE 0 END
        WHERE day = :day RETURNING day"""),
        {"w": is_workday, "note": note, "start": start_time, "minutes": minutes, "day": day})).first()
    if done is None:
        raise NotFound(f"{day} is outside the working calendar")
    await conn.execute(text("""
        UPDATE work_calendar w SET cum_minutes = r.cum
        FROM (SELECT day, coalesce(sum(minutes) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING
                                                      AND 1 PRECEDING), 0) AS cum FROM work_calendar) r
        WHERE w.day = r.day AND w.day > :day AND w.cum_minutes <> r.cum"""), {"day": day})
    return {"day": day, "is_workday": is_workday, "note": note}


async def calendar(conn: AsyncConnection, start: date, end: date) -> list[dict]:
    """The working calendar's days from `start` to `end`, both included; InvalidInput for more than 800 days."""
    if (end - start).days > 800:
        raise InvalidInput("ask for at most 800 days at a time")
    rows = await conn.execute(text("SELECT day, is_workday, start_time, minutes, note FROM work_calendar "
                                   "WHERE day BETWEEN :a AND :b ORDER BY day"), {"a": start, "b": end})
    return [dict(row) for row in rows.mappings()]
