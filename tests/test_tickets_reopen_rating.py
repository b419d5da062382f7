"""Reopening a rated ticket keeps the resident's rating: in the ticket's history, on the ticket and in the rates;
a new closing may be rated anew (against the real PostGIS)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from conftest import _clone
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from test_tickets_support import GRIDS, add_complaints, build_city, sql

from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.errors import Conflict
from gis.tickets import rates, workflow

ADMIN = Principal(role="admin", username="admin-test", user_id=None)


@pytest.fixture(scope="module")
def url(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    build_city(url)
    return url


async def _run(url: str, steps):
    engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            for step in steps:
                await step(conn)
                await conn.commit()
    finally:
        await engine.dispose()


def _close(ticket: int):
    async def close(conn):
        state = (await workflow.locked_ticket(conn, ADMIN, ticket))["state"]
        if state == "reported":
            await workflow.transition(conn, ADMIN, ticket, "register")
            state = "registered"
        if state == "registered":
            await workflow.transition(conn, ADMIN, ticket, "dispatch",
                                      assignee={"kind": "community", "code": GRIDS[0][:12]})
            state = "dispatched"
        if state == "dispatched":
            await workflow.transition(conn, ADMIN, ticket, "accept")
        await workflow.transition(conn, ADMIN, ticket, "handle")
        await workflow.transition(conn, ADMIN, ticket, "verify")
    return close


def _street_rates(url: str) -> dict:
    found = {}

    async def read(conn):
        now = datetime.now(timezone.utc)
        found["rows"] = await rates.rates(conn, ADMIN, "street", now - timedelta(days=30), now + timedelta(days=1),
                                          unit=GRIDS[0][:9])
    asyncio.run(_run(url, [read]))
    (row,) = found["rows"]
    return row


def test_reopen_keeps_the_rating_in_history_ticket_and_rates(url):
    (ticket,) = add_complaints(url, [{"grid": GRIDS[0]}])

    async def rate_two(conn):
        await workflow.rate(conn, ADMIN, ticket, 2, "还是漏")

    async def reopen(conn):
        await workflow.transition(conn, ADMIN, ticket, "reopen", note="居民反映问题复发")

    asyncio.run(_run(url, [_close(ticket), rate_two, reopen]))
    state, rating, comment, reopened = sql(url, "SELECT state, rating, rating_comment, reopen_count FROM ticket "
                                                "WHERE id = %s", [ticket])[0]
    assert (state, rating, comment, reopened) == ("dispatched", 2, "还是漏", 1)
    history = sql(url, "SELECT action, data FROM ticket_event WHERE ticket_id = %s ORDER BY id", [ticket])
    assert ("rate", {"score": 2}) in history
    assert history[-1] == ("reopen", {"rating_kept": 2})
    row = _street_rates(url)
    assert (row["rated"], row["satisfied"], row["satisfaction_rate"]) == (1, 0, 0.0)

    # Closed again, the new closing is rated anew and its rating replaces the old one; once only.
    async def rate_five(conn):
        await workflow.rate(conn, ADMIN, ticket, 5, None)

    asyncio.run(_run(url, [_close(ticket), rate_five]))
    assert sql(url, "SELECT state, rating FROM ticket WHERE id = %s", [ticket]) == [("closed", 5)]
    assert [d["score"] for a, d in sql(url, "SELECT action, data FROM ticket_event WHERE ticket_id = %s "
                                            "AND action = 'rate' ORDER BY id", [ticket])] == [2, 5]
    row = _street_rates(url)
    assert (row["rated"], row["satisfied"], row["satisfaction_rate"]) == (1, 1, 1.0)

    async def rate_again(conn):
        await workflow.rate(conn, ADMIN, ticket, 1, None)

    with pytest.raises(Conflict):
        asyncio.run(_run(url, [rate_again]))
