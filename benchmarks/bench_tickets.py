"""Tickets: listing a street's open tickets with filters (p50/p95), the three rates per street, and the cost of
the intake trigger on a bulk COPY of complaints (rolled back, so the city is left as it was)."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
from datetime import datetime, timedelta, timezone

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gis.access.auth import Principal
from gis.db.engine import libpq_url, with_driver
from gis.tickets import queries, rates
from gis.tickets.filters import TicketFilter

AREA = "tickets"
ADMIN = Principal(role="admin", username="bench", user_id=0)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def _listing(url: str, repeats: int) -> list[dict]:
    engine = create_async_engine(with_driver(url, "asyncpg"), poolclass=NullPool,
                                 connect_args={"server_settings": {"jit": "off"}})
    rng = random.Random(3)
    rows: list[dict] = []
    async with engine.connect() as conn:
        streets = [r[0] for r in await conn.execute(text("SELECT code FROM street WHERE valid_to IS NULL"))]
        categories = [r[0] for r in await conn.execute(text("SELECT code FROM category"))]
        grids = {s: [r[0] for r in await conn.execute(
            text("SELECT code FROM grid WHERE valid_to IS NULL AND left(code, 9) = :s"), {"s": s})]
            for s in streets}
        open_per_street = (await conn.execute(text(
            "SELECT coalesce(avg(n)::int, 0) FROM (SELECT count(*) n FROM ticket "
            "WHERE state IN ('reported', 'registered', 'dispatched', 'in_progress', 'handled') "
            "GROUP BY street_code) s"))).scalar()
        total = (await conn.execute(text("SELECT count(*) FROM ticket"))).scalar()
        floor = []
        for _ in range(repeats):
            started = time.perf_counter()
            await conn.execute(text("SELECT 1"))
            floor.append((time.perf_counter() - started) * 1000)
        cases = {
            "open, by due date": lambda s: TicketFilter(street=s, states=["open"]),
            "open + category": lambda s: TicketFilter(street=s, states=["open"],
                                                      categories=rng.sample(categories, 3)),
            "overdue": lambda s: TicketFilter(street=s, overdue=True),
            "open + 3 grids": lambda s: TicketFilter(street=s, states=["open"],
                                                     grids=rng.sample(grids[s], min(3, len(grids[s])))),
            "open + older than 2 days": lambda s: TicketFilter(street=s, states=["open"], min_age_hours=48),
        }
        for name, make in cases.items():
            timings = []
            for i in range(repeats):
                street = streets[i % len(streets)]
                principal = Principal(role="street", username="bench", user_id=0, scope=(street,))
                started = time.perf_counter()
                await queries.list_tickets(conn, principal, make(street), "due", 100, 0)
                timings.append((time.perf_counter() - started) * 1000)
            p50, p95 = statistics.median(timings), _percentile(timings, 0.95)
            note = (f"{total:,} tickets, ~{open_per_street:,} open per street, page of 100; "
                    f"{p50 / statistics.median(floor):.0f}x a SELECT 1 round trip ({statistics.median(floor):.2f} ms)")
            rows.append({"area": AREA, "metric": f"list street tickets [{name}] p50", "value": round(p50, 2),
                         "unit": "ms", "note": note})
            rows.append({"area": AREA, "metric": f"list street tickets [{name}] p95", "value": round(p95, 2),
                         "unit": "ms", "note": note})
        now = datetime.now(timezone.utc)
        timings = []
        for _ in range(max(5, repeats // 10)):
            started = time.perf_counter()
            await rates.rates(conn, ADMIN, "street", now - timedelta(days=365), now)
            timings.append((time.perf_counter() - started) * 1000)
        rows.append({"area": AREA, "metric": "rates per street, one query, p50", "value": round(
            statistics.median(timings), 1), "unit": "ms", "note": f"3 rates over {total:,} tickets, one statement"})
    await engine.dispose()
    return rows


def _copy_complaints(conn: psycopg.Connection, count: int, places: list[tuple], categories: list[str]) -> float:
    rng = random.Random(9)
    now = datetime.now(timezone.utc)
    started = time.perf_counter()
    with conn.cursor().copy("COPY complaint (category_code, description, reported_at, match_level, placement, "
                            "street_code, community_code, grid_code, compound_code, source) FROM STDIN") as copy:
        for _ in range(count):
            street, community, grid, compound = rng.choice(places)
            copy.write_row((rng.choice(categories), "bench", now - timedelta(minutes=rng.randrange(525_600)),
                            "compound", "inside", street, community, grid, compound, "hotline"))
    return time.perf_counter() - started


def _trigger_cost(url: str, count: int) -> list[dict]:
    """COPY the same rows twice, with and without the ticket trigger, each in a transaction rolled back."""
    with psycopg.connect(libpq_url(url)) as conn:
        places = conn.execute("SELECT DISTINCT street_code, community_code, grid_code, compound_code FROM complaint "
                              "WHERE grid_code IS NOT NULL LIMIT 20000").fetchall()
        categories = [r[0] for r in conn.execute("SELECT code FROM category").fetchall()]
        if not places:
            return []
        conn.execute("ALTER TABLE complaint DISABLE TRIGGER complaint_ticket_intake")
        bare = _copy_complaints(conn, count, places, categories)
        conn.rollback()
        with_tickets = _copy_complaints(conn, count, places, categories)
        conn.rollback()
    # The rolled-back rows stay behind as dead tuples until vacuumed; leave the city as it was found for the
    # modules that follow (index-only scans read the table wherever pages are not all-visible).
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) complaint, ticket")
    note = f"{count:,} complaints by COPY; the trigger adds {with_tickets / bare - 1:.0%} ({with_tickets - bare:.1f} s)"
    return [
        {"area": AREA, "metric": "COPY complaints without ticket trigger", "value": round(bare, 2), "unit": "s",
         "note": f"{count:,} rows, rolled back"},
        {"area": AREA, "metric": "COPY complaints with ticket trigger", "value": round(with_tickets, 2), "unit": "s",
         "note": note},
        {"area": AREA, "metric": "ticket intake throughput", "value": round(count / with_tickets), "unit": "rows/s",
         "note": f"{with_tickets / bare:.2f}x the bare COPY"},
    ]


def run(city_url: str) -> list[dict]:
    """Rows for listing tickets and the rates, repeated GRIDGOV_BENCH_REPEATS times, and the intake trigger's cost on a
    COPY of GRIDGOV_BENCH_TICKET_ROWS complaints (rolled back)."""
    repeats = int(os.environ.get("GRIDGOV_BENCH_REPEATS", "200"))
    copy_rows = int(os.environ.get("GRIDGOV_BENCH_TICKET_ROWS", "200000"))
    rows = asyncio.run(_listing(city_url, repeats))
    rows += _trigger_cost(city_url, copy_rows)
    return rows


if __name__ == "__main__":
    import sys

    for row in run(sys.argv[1]):
        print(f"{row['metric']:<55} {row['value']:>10} {row['unit']:<6} {row['note']}")
