"""Response, resolution, on-time and satisfaction rates (gis/tickets/rates.py) against pandas over the raw ticket
rows: the definitions are written out here, per level and over a period that cuts the year in two."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pandas as pd
import psycopg
import pytest
from conftest import _clone
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from test_tickets_deadlines import _year_of_complaints
from test_tickets_support import LOCAL, STREETS, build_city

from fixtures.ticket_history import simulate_ticket_history
from gis.access.auth import Principal
from gis.db.engine import with_driver
from gis.errors import InvalidInput
from gis.tickets import rates

ADMIN = Principal(role="admin", username="rates-admin", user_id=1)
LEVEL_COLUMNS = {"grid": "grid_code", "community": "community_code", "street": "street_code",
                 "property_company": "property_company_id"}


@pytest.fixture(scope="module")
def history(pg_cluster, empty_template):
    url = _clone(pg_cluster, empty_template)
    build_city(url)
    _year_of_complaints(url, 2500, seed=8)
    now = datetime.now(LOCAL)
    simulate_ticket_history(url, seed=13, now=now)
    with psycopg.connect(url) as conn:
        frame = pd.read_sql_query(
            "SELECT grid_code, community_code, street_code, property_company_id::text AS property_company_id, "
            "state, reported_at, dispatched_at, responded_at, response_due_at, closed_at, due_at, rating "
            "FROM ticket", conn)
    return url, now, frame


def expected_rates(frame: pd.DataFrame, column: str, start, end) -> dict[str, dict]:
    """The definitions: tickets reported in [start, end), neither rejected nor merged, per unit;
    response = responded by the response deadline / dispatched; resolution = closed / counted;
    on time = closed by the deadline / closed; satisfaction = rated 4 or 5 / rated."""
    t = frame[(frame.reported_at >= start) & (frame.reported_at < end) & ~frame.state.isin(["rejected", "merged"])
              & frame[column].notna()]
    out = {}
    for unit, g in t.groupby(column):
        dispatched = g.dispatched_at.notna().sum()
        in_time = (g.responded_at.notna() & g.response_due_at.notna() & (g.responded_at <= g.response_due_at)).sum()
        closed = (g.state == "closed").sum()
        closed_in_time = ((g.state == "closed") & (g.closed_at <= g.due_at)).sum()
        rated = g.rating.notna().sum()
        satisfied = (g.rating >= 4).sum()

        def ratio(a, b):
            return None if b == 0 else round(a / b, 4)

        out[str(unit)] = {"tickets": len(g), "dispatched": dispatched, "closed": closed, "rated": rated,
                          "response_rate": ratio(in_time, dispatched), "resolution_rate": ratio(closed, len(g)),
                          "on_time_rate": ratio(closed_in_time, closed), "satisfaction_rate": ratio(satisfied, rated)}
    return out


def _rates(url, principal, level, start, end):
    async def go():
        engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await rates.rates(conn, principal, level, start, end)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@pytest.mark.parametrize("level", sorted(LEVEL_COLUMNS))
@pytest.mark.parametrize("window", ["year", "recent half"])
def test_rates_equal_the_definitions(history, level, window):
    url, now, frame = history
    start = now - timedelta(days=366) if window == "year" else now - timedelta(days=180)
    end = now + timedelta(days=1)
    expected = expected_rates(frame, LEVEL_COLUMNS[level], pd.Timestamp(start), pd.Timestamp(end))
    got = {row["unit"]: row for row in _rates(url, ADMIN, level, start, end)}
    assert expected, "no tickets in the window"
    assert set(got) == set(expected)
    for unit, want in expected.items():
        row = got[unit]
        for key in ("tickets", "dispatched", "closed", "rated"):
            assert row[key] == want[key], (unit, key)
        for key in ("response_rate", "resolution_rate", "on_time_rate", "satisfaction_rate"):
            assert row[key] == (pytest.approx(want[key], abs=1e-4) if want[key] is not None else None), (unit, key)
    # the history is varied enough that each rate says something
    values = [row[key] for row in got.values() for key in ("response_rate", "resolution_rate", "on_time_rate",
                                                          "satisfaction_rate")]
    assert any(0 < v < 1 for v in values if v is not None)


def test_a_street_office_gets_its_own_street_only(history):
    url, now, frame = history
    street = Principal(role="street", username="rates-street", user_id=2, scope=(STREETS[0],))
    start, end = now - timedelta(days=366), now + timedelta(days=1)
    got = _rates(url, street, "grid", start, end)
    expected = expected_rates(frame[frame.street_code == STREETS[0]], "grid_code", pd.Timestamp(start),
                              pd.Timestamp(end))
    assert got and {row["unit"] for row in got} == set(expected)
    assert all(row["unit"].startswith(STREETS[0]) for row in got)


def test_bad_requests_are_refused(history):
    url, now, _ = history
    with pytest.raises(InvalidInput):
        _rates(url, Principal(role="public"), "street", now - timedelta(days=1), now)
    with pytest.raises(InvalidInput):
        _rates(url, ADMIN, "district", now - timedelta(days=1), now)
    with pytest.raises(InvalidInput):
        _rates(url, ADMIN, "street", now, now)
