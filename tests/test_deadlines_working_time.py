"""The 15-working-day deadline (complex class) counted in working time on a calendar written out here, and the
checks of the calendar and policy functions (gis/tickets/deadlines.py)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta, timezone

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gis.db.engine import with_driver
from gis.errors import InvalidInput, NotFound
from gis.tickets import deadlines

BEIJING = timezone(timedelta(hours=8))


def _run(url: str, work):
    async def main():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_fifteen_working_days_in_working_time(empty_db):
    """Monday 2 November 2026, 10:00. Thursday 5 and Friday 6 November are declared days off, Saturday 14 a
    make-up working day (调休). Working days are 09:00–17:00, 480 minutes; 15 of them are 7,200 minutes:
      2 Nov  10:00–17:00  420      (420)
      3, 4 Nov            960    (1,380)
      5, 6 Nov off; 7, 8 weekend
      9–13 Nov          2,400    (3,780)
      14 Nov (make-up)    480    (4,260)
      15 Nov Sunday
      16–20 Nov         2,400    (6,660)
      21, 22 weekend
      23 Nov              480    (7,140)
      24 Nov 09:00–10:00   60    (7,200)  → due Tuesday 24 November 2026, 10:00."""

    async def work(conn):
        await deadlines.set_day(conn, date(2026, 11, 5), False, "假日")
        await deadlines.set_day(conn, date(2026, 11, 6), False, "假日")
        await deadlines.set_day(conn, date(2026, 11, 14), True, "调休")
        start = datetime(2026, 11, 2, 10, 0, tzinfo=BEIJING)
        complex_due = await deadlines.due_at(conn, start, "complex")
        general_due = await deadlines.due_at(conn, start, "general")
        policies = {p["deadline_class"]: p for p in await deadlines.list_policies(conn)}
        return complex_due, general_due, policies

    complex_due, general_due, policies = _run(empty_db, work)
    assert (policies["complex"]["amount"], policies["complex"]["unit"], policies["complex"]["basis"]) == (
        15, "days", "working")
    assert complex_due.astimezone(BEIJING) == datetime(2026, 11, 24, 10, 0, tzinfo=BEIJING)
    # 7 working days (3,360 minutes): 420 + 960 (3, 4 Nov) + 1,920 (9–12 Nov) + 60 → Friday 13 November 10:00
    assert general_due.astimezone(BEIJING) == datetime(2026, 11, 13, 10, 0, tzinfo=BEIJING)
    # ordered by length: hours classes first
    assert [p for p in policies] == ["urgent", "utilities", "general", "complex"]


def test_calendar_days_read_back_and_bounds(empty_db):
    async def work(conn):
        await deadlines.set_day(conn, date(2026, 11, 14), True, "调休", start_time=time(8, 30), minutes=240)
        days = await deadlines.calendar(conn, date(2026, 11, 13), date(2026, 11, 15))
        assert (date(2028, 3, 12) - date(2026, 1, 1)).days == 801
        with pytest.raises(InvalidInput, match=r"^ask for at most 800 days at a time$"):
            await deadlines.calendar(conn, date(2026, 1, 1), date(2028, 3, 12))
        exactly = await deadlines.calendar(conn, date(2026, 1, 1), date(2028, 3, 11))  # 800 days: allowed
        for minutes in (0, 24 * 60 + 1):
            with pytest.raises(InvalidInput, match=r"^a working day has 1 to 1440 working minutes$"):
                await deadlines.set_day(conn, date(2026, 11, 16), True, minutes=minutes)
        one = await deadlines.set_day(conn, date(2026, 11, 17), True, minutes=1)
        whole = await deadlines.set_day(conn, date(2026, 11, 16), True, minutes=24 * 60)
        with pytest.raises(NotFound, match=r"^1990-01-01 is outside the working calendar$"):
            await deadlines.set_day(conn, date(1990, 1, 1), True)
        assert one["day"] == date(2026, 11, 17)
        return days, exactly, whole

    days, exactly, whole = _run(empty_db, work)
    assert [(d["day"], d["is_workday"], d["minutes"]) for d in days] == [
        (date(2026, 11, 13), True, 480), (date(2026, 11, 14), True, 240), (date(2026, 11, 15), False, 0)]
    assert days[1]["start_time"] == time(8, 30) and days[1]["note"] == "调休"
    assert exactly and [d["day"] for d in exactly] == sorted(d["day"] for d in exactly)
    assert whole == {"day": date(2026, 11, 16), "is_workday": True, "note": None}


def test_policy_checks(empty_db):
    async def work(conn):
        for args in ((0, "hours", "working", 1), (2, "hours", "working", 0)):
            with pytest.raises(InvalidInput, match=r"^amount and response_hours must be positive$"):
                await deadlines.set_policy(conn, "urgent", *args)
        for args in ((2, "weeks", "working", 1), (2, "hours", "lunar", 1)):
            with pytest.raises(InvalidInput, match=r"^unit is hours or days; basis is working or calendar$"):
                await deadlines.set_policy(conn, "urgent", *args)
        with pytest.raises(NotFound, match=r"^no deadline class 'someday'$"):
            await deadlines.set_policy(conn, "someday", 1, "hours", "working", 1)
        with pytest.raises(NotFound, match=r"^no deadline class 'someday'$"):
            await deadlines.due_at(conn, datetime(2026, 11, 2, 10, tzinfo=BEIJING), "someday")
        # the smallest amount and a class counted in days are accepted
        assert (await deadlines.set_policy(conn, "utilities", 1, "days", "calendar", 2))["amount"] == 1
        utilities = await deadlines.due_at(conn, datetime(2026, 11, 2, 10, tzinfo=BEIJING), "utilities")
        changed = await deadlines.set_policy(conn, "urgent", 3, "hours", "calendar", 1)
        due = await deadlines.due_at(conn, datetime(2026, 11, 2, 10, tzinfo=BEIJING), "urgent")
        return changed, due, utilities

    changed, due, utilities = _run(empty_db, work)
    assert utilities.astimezone(BEIJING) == datetime(2026, 11, 3, 10, 0, tzinfo=BEIJING)
    assert changed == {"deadline_class": "urgent", "amount": 3, "unit": "hours", "basis": "calendar",
                       "response_hours": 1}
    assert due.astimezone(BEIJING) == datetime(2026, 11, 2, 13, 0, tzinfo=BEIJING)
