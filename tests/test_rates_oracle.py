"""Response, handled, resolution, on-time and satisfaction rates (gis/tickets/rates.py) against pandas over the raw
ticket rows: the definitions are written out here, per level and over a period that cuts the year in two."""

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
        # callbacks on some closings: some say not solved, some answer satisfaction (before or after the rating)
        conn.execute("UPDATE ticket SET callback_at = closed_at + (CASE WHEN id % 2 = 0 THEN interval '3 days' "
                     "ELSE interval '1 minute' END), callback_solved = id % 3 <> 0, "
                     "callback_satisfied = CASE id % 4 WHEN 0 THEN NULL WHEN 1 THEN true ELSE false END "
                     "WHERE state = 'closed' AND id % 7 = 0")
        frame = pd.read_sql_query(
            "SELECT t.id, t.grid_code, t.community_code, t.street_code, "
            "t.property_company_id::text AS property_company_id, t.category_code, t.compound_code, "
            "c.building_code, c.micro_grid_code, t.state, t.reported_at, t.dispatched_at, t.responded_at, "
            "t.response_due_at, t.closed_at, t.due_at, t.rating, t.rated_at, t.callback_at, t.callback_solved, "
            "t.callback_satisfied FROM ticket t JOIN complaint c ON c.id = t.complaint_id", conn)
    return url, now, frame


def not_holding(frame: pd.DataFrame, days: int = 30) -> set[int]:
    """Closed tickets followed, within `days` after the closing, by a ticket of the same category at the same
    compound (or, outside compounds, the same building) that was not rejected."""
    closed = frame[frame.state == "closed"]
    later = frame[frame.state != "rejected"]
    found: set[int] = set()
    for keys, place in ((["compound_code"], closed[closed.compound_code.notna()]),
                        (["micro_grid_code", "building_code"],
                         closed[closed.compound_code.isna() & closed.building_code.notna()])):
        pairs = place.merge(later, on=[*keys, "category_code"], suffixes=("", "_r"))
        hit = pairs[(pairs.id_r != pairs.id) & (pairs.reported_at_r > pairs.closed_at)
                    & (pairs.reported_at_r <= pairs.closed_at + pd.Timedelta(days=days))]
        found |= set(hit.id)
    return found


def expected_rates(frame: pd.DataFrame, column: str, start, end) -> dict[str, dict]:
    """The definitions: tickets reported in [start, end), neither rejected nor merged, per unit;
    response = responded by the response deadline / dispatched; handled = closed / counted; resolution = closed,
    no repeat complaint within 30 days and no callback saying not solved / counted; on time = closed by the deadline
    / closed; satisfaction = the latest answer (rating 4 or 5, or a callback's satisfied) satisfied / answered."""
    repeated = not_holding(frame)
    t = frame[(frame.reported_at >= start) & (frame.reported_at < end) & ~frame.state.isin(["rejected", "merged"])
              & frame[column].notna()]
    out = {}
    for unit, g in t.groupby(column):
        dispatched = g.dispatched_at.notna().sum()
        in_time = (g.responded_at.notna() & g.response_due_at.notna() & (g.responded_at <= g.response_due_at)).sum()
        closed = (g.state == "closed").sum()
        refuted = (g.callback_solved == False) & (g.callback_at >= g.closed_at)  # noqa: E712
        resolved = ((g.state == "closed") & ~g.id.isin(repeated) & ~refuted.fillna(False)).sum()
        closed_in_time = ((g.state == "closed") & (g.closed_at <= g.due_at)).sum()
        rated = (g.rating.notna() | g.callback_satisfied.notna()).sum()
        by_callback = g.callback_satisfied.notna() & (g.rating.isna() | g.rated_at.isna()
                                                      | (g.callback_at >= g.rated_at))
        satisfied = ((by_callback & (g.callback_satisfied == True)) | (~by_callback & (g.rating >= 4))).sum()  # noqa: E712

        def ratio(a, b):
            return None if b == 0 else round(a / b, 4)

        out[str(unit)] = {"tickets": len(g), "dispatched": dispatched, "closed": closed, "rated": rated,
                          "resolved": resolved, "response_rate": ratio(in_time, dispatched),
                          "handled_rate": ratio(closed, len(g)), "resolution_rate": ratio(resolved, len(g)),
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
        for key in ("tickets", "dispatched", "closed", "rated", "resolved"):
            assert row[key] == want[key], (unit, key)
        for key in ("response_rate", "handled_rate", "resolution_rate", "on_time_rate", "satisfaction_rate"):
            assert row[key] == (pytest.approx(want[key], abs=1e-4) if want[key] is not None else None), (unit, key)
    # the history is varied enough that each rate says something
    values = [row[key] for row in got.values() for key in ("response_rate", "resolution_rate", "on_time_rate",
                                                          "satisfaction_rate")]
    assert any(0 < v < 1 for v in values if v is not None)
    # the simulated year holds repeat complaints, so handled and resolved differ somewhere
    assert any(row["resolved"] < row["closed"] for row in got.values())


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
